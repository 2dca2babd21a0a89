"""The chaos suite: a failing, slow or hostile CPX API never crashes the tool, hangs it, floods
it or reaches the terminal. Every scenario runs the real CLI against the simulator on loopback,
with faults drawn from a seed, so each test knows exactly which instances must come back."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_devops.client import (
    parse_retry_after,
)
from cli_devops.environment import Environment
from cli_devops.errors import PayloadError
from cli_devops.health import Thresholds, summarize_services
from cli_devops.model import Instance, decode_json, parse_instance
from cli_devops.render import write_report
from cli_devops.reports import flagged_report, instances_report, status_report
from cli_devops.run_config import report_unread

from . import test_resilience_chaos as chaos
from . import test_resilience_retries as retries
from . import test_resilience_transport as transport
from . import test_wait, test_watch, test_watch_detector
from .resilience_helpers import (
    FAILURE_DOC,
    terminal_clean,
)

# Properties of the parsers and renderers


@given(st.binary(max_size=2000))
def test_decode_json_accepts_or_explains_any_bytes(body):
    try:
        decode_json(body)
    except PayloadError as err:
        assert str(err) in (
            "answer is not valid JSON",
            "answer is nested too deeply",
            "answer has too many arrays or objects",
        )


@given(st.one_of(st.none(), st.text(max_size=60)), st.floats(0, 4e9))
def test_parse_retry_after_never_raises(value, now):
    seconds = parse_retry_after(value, now)
    assert seconds is None or seconds >= 0


def test_parse_retry_after_forms():
    now = 1_800_000_000.0
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(" 0 ", now) == 0
    assert parse_retry_after("Fri, 15 Jan 2027 08:00:10 GMT", 1_800_000_000.0) == 10
    assert parse_retry_after("Fri, 15 Jan 2027 07:00:00 GMT", now) == 0  # in the past
    for junk in ("-1", "1.5", "soon", "", "9" * 50, "\x1b[2J"):
        assert parse_retry_after(junk, now) is None


instance_strategy = st.builds(
    Instance,
    ip=st.ip_addresses().map(str),
    service=st.one_of(st.none(), st.text(max_size=30)),
    cpu=st.one_of(st.none(), st.floats(0, 100)),
    memory=st.one_of(st.none(), st.floats(0, 100)),
    error=st.one_of(st.none(), st.text(max_size=30)),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.lists(instance_strategy, max_size=8), st.sampled_from(["table", "csv", "json"]),
       st.booleans())  # fmt: skip
def test_renderers_never_raise_and_never_emit_control_characters(instances, output, tty):
    thresholds = Thresholds()
    summaries = summarize_services(instances, thresholds, 2)
    reports = [
        instances_report(instances, thresholds),
        status_report(summaries, 2),
        flagged_report(summaries, 2),
    ]
    for report in reports:
        env = Environment(stdout=io.StringIO(), stdout_isatty=tty, width=80)
        write_report(report, output, env)  # type: ignore[arg-type]
        text = env.stdout.getvalue()  # type: ignore[attr-defined]
        if output == "json":
            assert json.loads(text) == json.loads(json.dumps(list(report.records)))
        else:
            assert terminal_clean(text)


@given(st.lists(st.text(max_size=20), min_size=1, max_size=6), st.text(max_size=40))
def test_stderr_lines_never_carry_control_characters(reasons, message):
    env = Environment(stderr=io.StringIO())
    report_unread([Instance("10.0.0.1", None, None, None, r) for r in reasons], 9, env)
    env.warn(message)
    assert terminal_clean(env.stderr.getvalue())  # type: ignore[attr-defined]


@given(st.dictionaries(st.sampled_from(["service", "cpu", "memory"]),
                       st.one_of(st.text(), st.floats(), st.integers(), st.none())))  # fmt: skip
def test_every_rejection_has_a_reason_from_the_documented_list(payload):
    instance = parse_instance("10.0.0.1", payload)
    if instance.error is not None:
        assert re.fullmatch(
            r"service is (missing|not a string|longer than 256 characters"
            r"|empty or has no printable characters)"
            r"|(cpu|memory) is (missing|not a percentage|not a number|outside 0-100%)",
            instance.error,
        )


# docs/failure-behaviour.md states each guarantee and names the tests here that prove it.

GUARANTEES: dict[str, list[Callable[..., None]]] = {
    "Retries": [
        retries.test_flaky_api_failing_10_percent_gives_complete_correct_data_with_defaults,
        retries.test_retries_recover_exactly_the_instances_with_a_good_attempt_left,
        retries.test_transient_failures_are_retried,
        retries.test_backoff_waits_grow_exponentially_with_jitter,
        retries.test_failures_another_attempt_cannot_cure_are_not_retried,
        retries.test_retry_after_is_honoured,
        retries.test_retries_are_capped_per_run_when_everything_fails,
        retries.test_exporter_gets_a_fresh_retry_budget_and_deadline_every_scrape,
    ],
    "Time bounds": [
        retries.test_one_hung_instance_holds_the_run_at_most_its_attempts,
        retries.test_slow_rate_stalls_become_timeouts_exactly_where_seeded,
        retries.test_latency_beyond_the_timeout_is_a_timeout_and_within_it_is_fine,
        retries.test_deadline_ends_the_run_with_what_was_read,
        retries.test_deadline_applies_to_each_track_poll,
        retries.test_deadline_before_servers_answers_is_exit_3,
    ],
    "Size bounds": [
        retries.test_oversize_servers_answer_is_exit_3_without_reading_it_whole,
        retries.test_servers_cap_fits_100000_ipv6_addresses,
        chaos.test_chaos_every_hostile_answer_is_unknown_with_its_reason_and_nothing_else_is,
    ],
    "Validation": [
        chaos.test_chaos_every_hostile_answer_is_unknown_with_its_reason_and_nothing_else_is,
        test_every_rejection_has_a_reason_from_the_documented_list,
        test_decode_json_accepts_or_explains_any_bytes,
    ],
    "Terminal safety": [
        chaos.test_chaos_never_reaches_the_terminal_in_any_format_or_log,
        test_renderers_never_raise_and_never_emit_control_characters,
        test_stderr_lines_never_carry_control_characters,
    ],
    "Partial results": [
        retries.test_without_retries_exactly_the_failed_instances_are_unknown,
        chaos.test_strict_turns_any_unknown_into_exit_4_for_every_command,
        chaos.test_track_strict_exits_4_after_an_incomplete_poll,
        retries.test_servers_failing_on_every_attempt_is_exit_3_after_the_retries,
    ],
    "Token": [
        transport.test_token_is_sent_as_bearer_and_required_by_the_api,
        transport.test_token_never_appears_in_any_output_or_log,
        transport.test_redirect_to_another_host_does_not_carry_the_token,
        transport.test_redirect_within_the_same_origin_keeps_the_token,
    ],
    "TLS and proxies": [
        transport.test_https_needs_a_trusted_certificate,
        transport.test_tls_options_are_checked,
        transport.test_proxy_from_the_environment_is_used,
        transport.test_no_proxy_bypasses_the_proxy,
        transport.test_unsupported_proxy_is_a_usage_error_that_hides_the_url,
    ],
    "Waiting and watching": [
        test_wait.test_an_api_that_stays_unreachable_exits_3,
        test_watch_detector.test_an_outage_is_its_own_event_and_never_a_recovery,
        test_watch_detector.test_an_unread_instance_keeps_its_last_state,
        test_watch.test_a_slow_command_never_holds_up_the_events,
        test_watch.test_a_webhook_that_keeps_failing_is_reported_and_watching_goes_on,
    ],
}


def node_id(test: Callable[..., None]) -> str:
    return f"{test.__module__.rsplit('.', 1)[-1]}.py::{test.__name__}"


def test_failure_behaviour_doc_states_each_guarantee_next_to_its_tests():
    text = FAILURE_DOC.read_text()
    stated = re.findall(r"^- \*\*(.+?)\.?\*\*", text, flags=re.MULTILINE)
    assert stated == list(GUARANTEES)
    table = text.split("## Which tests prove each guarantee", 1)[1]
    rows = dict(re.findall(r"^\| (.+?) \| (.+?) \|$", table, flags=re.MULTILINE)[1:])
    assert list(rows) == list(GUARANTEES)
    for guarantee, tests in GUARANTEES.items():
        named = re.findall(r"`([\w:.]+)`", rows[guarantee])
        assert named == [node_id(test) for test in tests]
