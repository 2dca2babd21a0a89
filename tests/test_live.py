"""The live view of `track` and the history behind it, driven without a clock or a terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from cli_devops.history import (
    ASCII_LEVELS,
    GONE_POLLS,
    MAX_RETIRED,
    Series,
    TrackState,
    sparkline,
)
from cli_devops.model import Instance
from cli_devops.track.live import build_summary, build_view, summary_title

START = datetime(2026, 11, 28, 18, 0, 0, tzinfo=UTC)


def test_sparkline_scales_0_to_100_in_eight_levels():
    assert sparkline([0, 12.4, 12.5, 50, 87.4, 87.5, 100], 7) == "▁▁▂▅▇██"


def test_sparkline_gaps_padding_and_width():
    assert sparkline([10, None, 95], 3) == "▁ █"
    assert sparkline([10, 95], 5) == "   ▁█"  # newest sample always in the last column
    assert sparkline([0, 10, 20, 30, 100], 2) == "▃█"  # the most recent samples
    assert sparkline([], 3) == "   "
    assert sparkline([50], 0) == ""


def test_sparkline_clamps_and_has_an_ascii_form():
    assert sparkline([-5, 150], 2) == "▁█"
    assert sparkline([0, 50, 100], 3, levels=ASCII_LEVELS) == "_=#"


def test_series_keeps_a_fixed_number_of_samples_and_stats_since_start():
    series = Series(30)
    for n in range(10_000):
        series.add(n % 101)
    series.add(None)
    assert len(series.recent) == 30
    assert series.recent[-1] is None
    assert series.stats.count == 10_000
    assert (series.stats.low, series.stats.high) == (0, 100)
    assert series.stats.mean == pytest.approx(sum(n % 101 for n in range(10_000)) / 10_000)


def make_state(**kwargs: object) -> TrackState:
    return TrackState(service="UserService", base_url="http://127.0.0.1:8081", interval=3.0,
                      **kwargs)  # type: ignore[arg-type]  # fmt: skip


def poll(state: TrackState, *members: Instance) -> None:
    clock = state.polls * 3.0
    state.begin_poll(clock)
    state.record(list(members), moment=START + timedelta(seconds=clock), clock=clock + 0.1)


def fail(state: TrackState, error: str = "connection failed: connection refused") -> None:
    clock = state.polls * 3.0
    state.begin_poll(clock)
    state.record_failure(error, moment=START + timedelta(seconds=clock), clock=clock + 0.1)


def ins(ip: str, cpu: float | None, memory: float | None, error: str | None = None) -> Instance:
    return Instance(ip, "UserService", cpu, memory, error)


def render(
    state: TrackState, *, width: int = 120, height: int = 30, now: float = 0.0, unicode: bool = True
) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, height=height, color_system=None)
    now = now or (state.last_clock or 0.0)
    console.print(build_view(state, now=now, width=width, height=height, unicode=unicode))
    return out.getvalue()


def row(screen: str, ip: str) -> str:
    return next(line for line in screen.splitlines() if line.startswith(ip + " "))


def test_view_shows_instances_trends_and_min_avg_max():
    state = make_state()
    for cpu in (10, 50, 95):
        poll(state, ins("10.0.0.1", cpu, 20), ins("10.0.0.2", 30, 40))
    screen = render(state)
    lines = screen.splitlines()
    assert lines[0].startswith("UserService · poll 3 at ")
    assert lines[0].endswith(" · every 3s · http://127.0.0.1:8081")
    assert lines[1] == "updated 0s ago"
    assert lines[3].split() == ["IP", "Status", "CPU", "trend", "min", "avg", "max",
                                "Memory", "trend", "min", "avg", "max"]  # fmt: skip
    assert row(screen, "10.0.0.1").split() == [
        "10.0.0.1", "Unhealthy", "95%", "▁▅█", "10", "52", "95", "20%", "▂▂▂", "20", "20", "20"
    ]  # fmt: skip
    assert lines[-1] == (
        "Service Unhealthy: 1 of 2 instances healthy, needs 2; 1 unhealthy, 0 unknown"
    )
    assert max(len(line) for line in lines) <= 120


def test_view_puts_the_worst_instances_first_and_cuts_the_rest_to_fit_the_height():
    state = make_state()
    members = [ins(f"10.0.1.{n}", n, 10) for n in range(1, 41)]
    members[4] = ins("10.0.1.5", None, None, "timed out after 5s")
    members[20] = ins("10.0.1.21", 99, 10)
    poll(state, *members)
    screen = render(state, height=12)
    lines = screen.splitlines()
    assert len(lines) <= 12
    rows = [line.split()[0] for line in lines[4:-3]]
    assert rows == ["10.0.1.21", "10.0.1.5", "10.0.1.40", "10.0.1.39", "10.0.1.38"]
    assert lines[-3] == "… 35 more not shown (35 healthy)"
    assert lines[-1] == "unknown: 10.0.1.5 timed out after 5s"


@pytest.mark.parametrize(
    ("width", "sparklines", "stats"),
    [(120, True, True), (80, True, True), (60, False, True), (40, False, False)],
)
def test_a_narrow_window_drops_sparklines_before_numbers(width, sparklines, stats):
    state = make_state()
    for cpu in (10, 50, 95):
        poll(state, ins("10.0.0.1", cpu, 20), ins("10.0.0.2", 30, 40))
    screen = render(state, width=width)
    assert max(len(line) for line in screen.splitlines()) <= width
    line = row(screen, "10.0.0.1")
    assert ("▁▅█" in line) is sparklines
    assert (" 10  52  95" in line) is stats
    assert "95%" in line
    assert "20%" in line


def test_sparklines_shrink_to_the_most_recent_samples():
    state = make_state()
    for n in range(30):
        poll(state, ins("10.0.0.1", n * 3, 20))
    assert "87% ▁▁▁▁▁▂▂▂▂▃▃▃▃▄▄▄▄▅▅▅▅▆▆▆▆▇▇▇▇▇   0  44  87" in row(
        render(state, width=130), "10.0.0.1"
    )
    assert "87% ▅▅▅▆▆▆▆▇▇▇▇▇   0  44  87" in row(render(state, width=80), "10.0.0.1")


def test_a_failed_poll_keeps_the_data_marked_stale_and_recovers():
    state = make_state()
    poll(state, ins("10.0.0.1", 40, 20))
    fail(state)
    fail(state)
    screen = render(state, now=state.last_clock + 1.0)
    assert screen.splitlines()[1] == (
        "⚠ STALE: data of poll 1, 7s old; last 2 polls failed: "
        "connection failed: connection refused"
    )
    assert row(screen, "10.0.0.1").split()[:3] == ["10.0.0.1", "Healthy", "40%"]
    assert "40% " + " " * 27 + "▄    40  40  40" in row(screen, "10.0.0.1")  # gaps: failed
    assert screen.splitlines()[-1] == (
        "As of poll 1, the last good one: Service Unhealthy: 1 of 1 instance healthy, needs 2; "
        "0 unhealthy, 0 unknown"
    )
    poll(state, ins("10.0.0.1", 42, 20))
    screen = render(state)
    assert screen.splitlines()[1] == "updated 0s ago"
    assert screen.splitlines()[-1].startswith("Service Unhealthy: 1 of 1 instance healthy")
    assert "42% " + " " * 26 + "▄  ▄  40  41  42" in row(screen, "10.0.0.1")


@pytest.mark.parametrize("width", [30, 60, 120])
def test_a_terminal_without_unicode_gets_plain_ascii(width):
    state = make_state()
    poll(state, *(ins(f"10.0.0.{n}", n * 9, 50) for n in range(1, 12)))
    fail(state)
    screen = render(state, width=width, height=10, unicode=False)
    assert screen.isascii()
    assert "! STALE" in screen
    assert "... 7 more not shown" in screen
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(build_summary(state, unicode=False))
    assert out.getvalue().isascii()  # even where a cramped column is cut


def test_before_the_first_answer_and_during_a_long_poll():
    state = make_state()
    state.begin_poll(10.0)
    assert render(state, now=10.5).splitlines()[1] == "waiting for the first answer of the CPX API"
    assert render(state, now=14.0).splitlines()[1] == (
        "waiting for the first answer of the CPX API; polling for 4s"
    )
    fail(state)
    assert render(state).splitlines()[1] == (
        "⚠ no data yet, poll failed: connection failed: connection refused"
    )


def test_instances_appear_and_disappear():
    state = make_state()
    poll(state, ins("10.0.0.1", 40, 20), ins("10.0.0.2", 50, 20))
    poll(state, ins("10.0.0.1", 40, 20), ins("10.0.0.3", 60, 20))
    screen = render(state)
    assert row(screen, "10.0.0.3").split()[:3] == ["10.0.0.3", "Healthy", "60%"]
    assert row(screen, "10.0.0.2").split()[:3] == ["10.0.0.2", "Gone", "-"]
    assert screen.splitlines()[-1].endswith("; 0 unhealthy, 0 unknown, 1 gone")
    assert "2 of 2 instances healthy" in screen.splitlines()[-1]
    for _ in range(GONE_POLLS):
        poll(state, ins("10.0.0.1", 40, 20), ins("10.0.0.3", 60, 20))
    assert "10.0.0.2 " not in render(state)
    assert [t.ip for t in state.all_tracks()] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    poll(state, ins("10.0.0.2", 70, 20))  # it came back: its history continues
    assert state.tracks["10.0.0.2"].seen == 2


def test_memory_stays_bounded_while_instances_come_and_go():
    state = make_state(history=10)
    for n in range(2_000):
        poll(state, ins(f"10.1.{n // 250}.{n % 250 + 1}", 40, 20), ins("10.0.0.1", 50, 50))
    assert len(state.tracks) <= GONE_POLLS + 2
    assert len(state.retired) == MAX_RETIRED
    assert all(len(track.cpu.recent) <= 10 for track in state.tracks.values())
    assert state.tracks["10.0.0.1"].cpu.stats.count == 2_000


def test_summary_per_instance():
    state = make_state()
    poll(state, ins("10.0.0.2", 95, 40), ins("10.0.0.1", 10, 20))
    poll(state, ins("10.0.0.2", 50, 60), ins("10.0.0.1", None, None, "HTTP 500"))
    fail(state)
    poll(state, ins("10.0.0.2", 45, 50), ins("10.0.0.1", 30, 40))
    assert summary_title(state) == "UserService: 4 polls over 9s, 1 failed"
    out = io.StringIO()
    Console(file=out, width=60, color_system=None).print(build_summary(state, width=60))
    assert [line.rstrip() for line in out.getvalue().splitlines()] == [
        "UserService: 4 polls over 9s, 1 failed",
        "                             CPU       Memory",
        "IP       Status  Samples min avg max min avg max Healthy",
        "10.0.0.1 Healthy       2  10  20  30  20  30  40     66%",  # HTTP 500 once: 2 of 3
        "10.0.0.2 Healthy       3  45  63  95  40  50  60     66%",
        "Healthy: share of its polls in which it was Healthy.",
    ]


def test_summary_in_a_narrow_window_wraps_instead_of_cutting_figures():
    state = make_state()
    poll(state, ins("10.0.0.2", 95, 40), ins("10.0.0.100", 10, 20))
    poll(state, ins("10.0.0.2", 50, 60), ins("10.0.0.100", None, None, "HTTP 500"))
    out = io.StringIO()
    Console(file=out, width=40, color_system=None).print(build_summary(state, width=40))
    text = " ".join(line.strip() for line in out.getvalue().splitlines())
    assert "…" not in text
    assert "10.0.0.2 Healthy: 2 samples, CPU 50/72/95, memory 40/50/60, Healthy 50%" in text
    assert "10.0.0.100 Unknown: 1 sample, CPU 10/10/10, memory 20/20/20, Healthy 50%" in text
    assert "CPU and memory: min/avg/max." in text
    assert max(len(line) for line in out.getvalue().splitlines()) <= 40


def test_summary_before_any_answer():
    out = io.StringIO()
    Console(file=out, width=60, color_system=None).print(build_summary(make_state()))
    assert out.getvalue().splitlines() == ["UserService: 0 polls over 0s", "No instance was read."]
