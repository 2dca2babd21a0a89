"""Durations: the parser (examples and properties) and the click type every seconds option uses."""

from __future__ import annotations

import math

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli_devops.durations import ACCEPTED_FORMS, Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1.5", 1.5),
        ("5", 5.0),
        (".5", 0.5),
        ("1500ms", 1.5),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h2m3s4ms", 3723.004),
        ("0.5s", 0.5),
        (" 2s ", 2.0),
        ("1m1ms", 60.001),
    ],
)
def test_accepted_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "s", "5x", "-1", "+1", "1e3", "inf", "nan", "1s1m", "1m1m", "5 s", "1.2.3", "٣", "5sec",
     "1_000", "ms", "1h-1m", "0x10", "1" * 70],
)  # fmt: skip
def test_refused_forms_say_what_is_accepted(text):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert "1500ms, 2s, 1m, 1m30s" in str(caught.value) or "too long" in str(caught.value)


def test_ten_years_at_most():
    assert parse_duration("87600h") == 87600 * 3600
    with pytest.raises(ValueError, match="too long a duration"):
        parse_duration("87601h")


_part = st.one_of(
    st.integers(0, 10_000).map(str),
    st.decimals(0, 10_000, places=3, allow_nan=False, allow_infinity=False).map(str),
)


@given(h=st.none() | _part, m=st.none() | _part, s=st.none() | _part, ms=st.none() | _part)
def test_composed_durations_add_up(h, m, s, ms):
    parts = [(h, "h", 3600), (m, "m", 60), (s, "s", 1), (ms, "ms", 0.001)]
    text = "".join(f"{value}{unit}" for value, unit, _ in parts if value is not None)
    if not text:
        return
    expected = sum(float(value) * scale for value, _, scale in parts if value is not None)
    assert parse_duration(text) == pytest.approx(expected)


@given(st.text(max_size=80))
def test_any_text_is_seconds_or_a_value_error(text):
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        assert str(err)
    else:
        assert math.isfinite(seconds)
        assert seconds >= 0


@given(st.floats(min_value=0.001, max_value=1e6, allow_nan=False))
def test_plain_seconds_mean_seconds(seconds):
    text = f"{seconds:.6f}"
    assert parse_duration(text) == float(text)
    assert parse_duration(text + "s") == float(text)


def test_format_duration():
    assert [format_duration(x) for x in (0.1, 0.5, 2, 5, 60, 90, 3600)] == [
        "100ms", "500ms", "2s", "5s", "1m", "1m30s", "60m",
    ]  # fmt: skip


@click.command()
@click.option("--timeout", type=Duration(), default=5.0)
@click.option("--interval", type=Duration(0.1, min_open=False), default=3.0)
def _probe(timeout: float, interval: float) -> None:
    click.echo(f"{timeout!r} {interval!r}")


@pytest.mark.parametrize(
    ("args", "out"),
    [
        ([], "5.0 3.0"),
        (["--timeout", "5s"], "5.0 3.0"),
        (["--timeout", "1500ms", "--interval", "100ms"], "1.5 0.1"),
        (["--interval", "1m30s"], "5.0 90.0"),
    ],
)
def test_click_type_accepts(args, out):
    result = CliRunner().invoke(_probe, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "5x"], f"Invalid value for '--timeout': '5x' is not a duration; use "
                              f"{ACCEPTED_FORMS}"),
        (["--timeout", "0"], "Invalid value for '--timeout': '0' is too short: must be more "
                             "than 0ms"),
        (["--interval", "50ms"], "Invalid value for '--interval': '50ms' is too short: must be "
                                 "at least 100ms"),
    ],
)  # fmt: skip
def test_click_type_refuses(args, message):
    result = CliRunner().invoke(_probe, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_numbers_from_a_config_file_are_seconds():
    assert Duration().convert(3, None, None) == 3.0
    assert Duration().convert(2.5, None, None) == 2.5
    for bad in (True, [1], float("inf")):
        with pytest.raises(click.BadParameter):
            Duration().convert(bad, None, None)
