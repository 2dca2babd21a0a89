"""Forecasts: when a rising trend would cross its threshold."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_devops.forecast import describe, eta


def test_a_steady_leak_crosses_in_the_expected_time():
    values = [50.0 + n for n in range(12)]  # a point per 60 s poll, now at 61%
    assert eta(values, 60.0, 90.0) == pytest.approx(29 * 60)
    assert describe("mem", 90, 29 * 60) == "mem 90% in ~29m"
    assert describe("cpu", 85.5, 20) == "cpu 85.5% in <1m"


def test_no_forecast_without_enough_samples_a_rise_or_a_near_crossing():
    assert eta([50.0 + n for n in range(9)], 60.0, 90.0) is None  # 9 samples
    assert eta([60.0 - n for n in range(12)], 60.0, 90.0) is None  # falling
    assert eta([50.0] * 12, 60.0, 90.0) is None  # flat
    assert eta([10.0 + 0.01 * n for n in range(12)], 60.0, 90.0) is None  # days away
    assert eta([80.0 + n for n in range(12)], 60.0, 90.0) is None  # already above


def test_gaps_are_skipped_but_keep_their_place_in_time():
    values: list[float | None] = [50.0 + n for n in range(12)]
    values[3] = values[7] = None
    assert eta(values, 60.0, 90.0) == pytest.approx(29 * 60)
    assert eta([None] * 5 + [50.0] * 5, 60.0, 90.0) is None


def test_noise_around_a_level_is_not_a_trend():
    wobble = [50.0 + 3 * math.sin(n * 2.1) for n in range(30)]
    assert eta(wobble, 2.0, 90.0) is None


@given(
    st.lists(st.one_of(st.none(), st.floats(0, 100)), max_size=60),
    st.floats(0.1, 600),
    st.floats(1, 100),
)
def test_a_forecast_is_within_the_hour_and_never_for_a_value_above(values, interval, limit):
    seconds = eta(values, interval, limit)
    if seconds is not None:
        assert 0 <= seconds <= 3600
        assert sum(v is not None for v in values) >= 10
        assert [v for v in values if v is not None][-1] <= limit
