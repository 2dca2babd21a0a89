"""The parsing of Prometheus query API answers and the assembly of the fleet from them."""

from __future__ import annotations

import contextlib
import json
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_devops.errors import PayloadError, UsageError
from cli_devops.model import Instance
from cli_devops.sources.prometheus_api import (
    InstanceSample,
    Range,
    Sample,
    parse_instance_vector,
    parse_matrix,
    parse_vector,
)
from cli_devops.sources.prometheus_fleet import assemble, percent, target_states
from cli_devops.sources.promql import check_selector, parse_moment, prometheus_url, with_matcher

TARGET = (("instance", "127.0.0.1:9101"), ("job", "cpx"))
OTHER = (("instance", "127.0.0.1:9102"), ("job", "cpx"))


def vector_body(result: object, status: str = "success", result_type: str = "vector") -> bytes:
    return json.dumps(
        {"status": status, "data": {"resultType": result_type, "result": result}}
    ).encode()


def test_a_vector_answer_is_read():
    body = vector_body(
        [{"metric": {"ip": "10.0.0.1", "job": "cpx"}, "value": [1700000000.5, "0.25"]}]
    )
    assert parse_vector(body) == [Sample((("ip", "10.0.0.1"), ("job", "cpx")), 1700000000.5, 0.25)]


def test_a_matrix_answer_is_read():
    body = vector_body(
        [{"metric": {"job": "cpx"}, "values": [[1, "1"], [2, "0"]]}], result_type="matrix"
    )
    assert parse_matrix(body) == [Range((("job", "cpx"),), [(1.0, 1.0), (2.0, 0.0)])]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("NaN", math.nan), ("+Inf", math.inf), ("-Inf", -math.inf), ("1e400", math.inf),
     ("-0", 0.0), (".5", 0.5), ("1E-3", 0.001)],
)  # fmt: skip
def test_prometheus_float_syntax_is_read(text, expected):
    value = parse_vector(vector_body([{"metric": {}, "value": [1, text]}]))[0].value
    assert value == expected or (math.isnan(value) and math.isnan(expected))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"[", "answer is not valid JSON"),
        (b"[]", "the answer is not a JSON object"),
        (b'{"status": "error", "errorType": "bad_data", "error": "parse error"}',
         "Prometheus answered an error: bad_data: parse error"),
        (b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
         "the answer's resultType is not vector"),
        (vector_body({}), "the answer's result is not a list"),
        (vector_body([{"metric": {"a": 1}, "value": [1, "1"]}]), "label a is not a string"),
        (vector_body([{"metric": {"1a": "x"}, "value": [1, "1"]}]), "a label name is not valid"),
        (vector_body([{"metric": {}, "value": [1, 1]}]), "a sample's value is not a number"),
        (vector_body([{"metric": {}, "value": [1, "1_0"]}]), "a sample's value is not a number"),
        (vector_body([{"metric": {}, "value": [1, "infinity"]}]),
         "a sample's value is not a number"),
        (vector_body([{"metric": {}, "value": [True, "1"]}]), "a sample's time is not a number"),
        (vector_body([{"metric": {}, "value": [1e300, "1"]}]), "a sample's time is out of range"),
        (b'{"status": "success", "data": {"resultType": "vector", "result": '
         b'[{"metric": {}, "value": [NaN, "1"]}]}}', "answer is not valid JSON"),
        (vector_body([{"metric": {}, "value": [1]}]), "a sample is not a [time, value] pair"),
        (vector_body([{"metric": {}}]), "a result lacks value"),
        (b"[" * 100_000, "answer has too many arrays or objects for its size"),
    ],
)  # fmt: skip
def test_anything_but_the_documented_shape_is_rejected(answer, reason):
    with pytest.raises(PayloadError) as caught:
        parse_vector(answer)
    assert str(caught.value) == reason


def test_matrix_points_must_be_in_time_order():
    body = vector_body([{"metric": {}, "values": [[2, "1"], [1, "1"]]}], result_type="matrix")
    with pytest.raises(PayloadError, match="not in time order"):
        parse_matrix(body)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["NaN", "+Inf", "-Inf", "1e999", "0.5", "1_0", " 1", "0x10"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow
@settings(max_examples=300)
@given(
    metric=st.one_of(json_values, st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
    value=json_values,
    timestamp=json_values,
)
def test_any_series_is_read_or_rejected_with_a_reason(metric, value, timestamp):
    body = vector_body([{"metric": metric, "value": [timestamp, value]}])
    try:
        samples = parse_vector(body)
    except PayloadError as err:
        assert str(err)
        return
    assert len(samples) == 1
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in samples[0].labels)
    assert math.isfinite(samples[0].timestamp)


@given(st.binary(max_size=200))
def test_any_bytes_are_read_or_rejected_with_a_reason(body):
    for parse in (parse_vector, parse_matrix, lambda answer: parse_instance_vector(answer, {})):
        with contextlib.suppress(PayloadError):
            parse(body)


@pytest.mark.slow
@settings(max_examples=200)
@given(metric=st.dictionaries(st.text(max_size=6), json_values, max_size=4), value=json_values)
def test_the_instance_parser_agrees_with_the_general_one(metric, value):
    body = vector_body([{"metric": metric, "value": [1, value]}])
    try:
        general = parse_vector(body)
    except PayloadError as err:
        with pytest.raises(PayloadError) as caught:
            parse_instance_vector(body, {})
        assert str(caught.value) == str(err)
        return
    (instance,) = parse_instance_vector(body, {})
    labels = dict(general[0].labels)
    assert (instance.ip, instance.service) == (labels.get("ip"), labels.get("cpx_service"))
    assert dict(instance.target) == {
        k: v for k, v in labels.items() if k not in ("ip", "cpx_service", "__name__")
    }
    assert (instance.timestamp, instance.value) == general[0][1:] or math.isnan(instance.value)


@given(st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False))
def test_a_ratio_gives_back_the_percentage_cpx_sent(number: Decimal):
    sent = float(number)
    read = percent(sent / 100, "cpu")
    assert read == sent
    assert isinstance(read, int) == sent.is_integer()


@pytest.mark.parametrize("ratio", [math.nan, math.inf, -math.inf, 1.5, -0.01, 1e308])
def test_a_ratio_that_is_no_percentage_is_rejected(ratio):
    with pytest.raises(PayloadError):
        percent(ratio, "cpu")


def sample(ip, value: float, target=TARGET, service=None, at=100.0) -> InstanceSample:
    return InstanceSample(ip, service, target, at, value)


def scraped(target=TARGET, up=1.0, cpx_up=1.0, last=100.0):
    points = [(last - 2, 1.0), (last - 1, 1.0), (last, up)]
    return Range(target, points), Range(target, [(t, cpx_up) for t, _ in points])


def states(*targets, at=100.0):
    ups, cpx_ups = zip(*targets, strict=False)
    return target_states(list(ups), list(cpx_ups), at)


def test_instances_are_read_unknown_or_gone_by_their_target():
    current = states(scraped(TARGET), scraped(OTHER, up=0.0))
    known = [sample(ip, 1, TARGET) for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3")]
    known += [sample("10.0.0.4", 1, OTHER), sample("junk", 1, TARGET)]
    failed = [sample("10.0.0.2", 0)]
    cpu = [sample("10.0.0.1", 0.615, service="A")]
    memory = [sample("10.0.0.1", 0.2, service="A")]
    read = assemble(current, known, failed, cpu, memory)
    down = "exporter target 127.0.0.1:9102 (job cpx) is down (up 0)"
    assert read.snapshot.instances == [
        Instance("10.0.0.1", "A", 61.5, 20),
        Instance("10.0.0.2", None, None, None, "the exporter could not read it from CPX"),
        Instance("10.0.0.4", None, None, None, down),
    ]  # 10.0.0.3: its target is current and no longer exports it, so it left the fleet
    assert read.snapshot.skipped == 1
    assert read.down == [f"{down}: 1 instance Unknown"]


def test_an_instance_that_moved_shard_is_read_where_it_is_now():
    current = states(scraped(TARGET, up=0.0), scraped(OTHER))
    known = [sample("10.0.0.1", 1, TARGET), sample("10.0.0.1", 1, OTHER)]
    figures = [sample("10.0.0.1", 0.5, OTHER, "A")]
    read = assemble(current, known, [], figures, figures)
    assert read.snapshot.instances == [Instance("10.0.0.1", "A", 50, 50)]
    assert read.down == []


def test_a_target_without_a_recent_sample_is_stale():
    reasons = states(scraped(TARGET, last=90.0), scraped(OTHER, cpx_up=0.0))
    assert reasons == {
        TARGET: "exporter target 127.0.0.1:9101 (job cpx) has no sample for 10s "
        "(scrape interval 1s)",
        OTHER: "the exporter at target 127.0.0.1:9102 (job cpx) cannot read CPX (cpx_up 0)",
    }
    fresh = states(scraped(TARGET, last=98.5))
    assert fresh == {TARGET: None}


def test_figures_that_are_not_percentages_make_the_instance_unknown():
    current = states(scraped(TARGET))
    ips = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5")
    failed = [sample("10.0.0.4", math.nan)]
    cpu = [sample("10.0.0.1", math.nan, service="A"), sample("10.0.0.2", 0.5, service=" ")]
    cpu += [sample("10.0.0.3", 2.0, service="A"), sample("10.0.0.6", 0.5, service="A")]
    memory = [sample(ip, 0.5, service="A") for ip in ips]
    memory.append(sample("10.0.0.7", 0.5, service=" "))
    cpu.append(sample("10.0.0.7", 0.5, service=" "))
    read = assemble(current, [], failed, cpu, memory)
    assert [i.error for i in read.snapshot.instances] == [
        "cpu is not a number",
        "CPU and memory series name different services",
        "cpu is outside 0-100%",
        "cpx_instance_scrape_success is not 0 or 1",
        "no CPU series in Prometheus",
        "no memory series in Prometheus",
        "service is empty or has no printable characters",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", ""), ('{job="cpx"}', '{job="cpx"}'),
     ("{ job = 'a,b' , env!~`x}` , }", "{job = 'a,b',env!~`x}`}"),
     ('{a=~"x\\"y"}', '{a=~"x\\"y"}')],
)  # fmt: skip
def test_a_selector_is_label_matchers(text, expected):
    assert check_selector(text) == expected


@pytest.mark.parametrize(
    "text", ['job="cpx"', "{}", '{job="cpx"} or vector(1)', '{job="cpx"}[5m]', "{job=cpx}",
             '{job="cpx"}) or (up', '{"job"="x"}', '{job="a"}{b="c"}']
)  # fmt: skip
def test_anything_but_label_matchers_is_refused(text):
    with pytest.raises(UsageError, match="expected label matchers"):
        check_selector(text)


def test_a_service_narrows_the_selector():
    assert with_matcher("", "cpx_service", 'a"b') == '{cpx_service="a\\"b"}'
    assert with_matcher('{job="cpx"}', "cpx_service", "A") == '{job="cpx",cpx_service="A"}'


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("-1m", 60), ("5m ago", 300), ("-1h30m", 5400), ("90s ago", 90), ("-500ms", 0.5)],
)
def test_a_relative_moment(text, seconds):
    assert parse_moment(text, 10_000.0) == 10_000.0 - seconds


def test_an_rfc3339_moment():
    now = 1796403600.0
    assert parse_moment("2026-12-04T17:00:00Z", now) == 1796403600.0
    assert parse_moment("2026-12-04T18:00:00+01:00", now) == 1796403600.0
    with pytest.raises(UsageError, match="is in the future"):
        parse_moment("2026-12-04T17:01:00Z", now)


@pytest.mark.parametrize(
    "text", ["yesterday", "-", "5 ago", "-5x", "2026-12-04", "2026-12-04T17:00:00", "-1e9w"]
)
def test_an_unreadable_moment_is_refused(text):
    with pytest.raises(UsageError, match="invalid time"):
        parse_moment(text, 0)


def test_credentials_in_the_url_become_basic_auth():
    assert prometheus_url("127.0.0.1:9090") == ("http://127.0.0.1:9090", None)
    assert prometheus_url("https://u%40x:p@[::1]:9090/prom/") == (
        "https://[::1]:9090/prom",
        "dUB4OnA=",
    )
    with pytest.raises(UsageError):
        prometheus_url("ftp://host")
