"""Time travel in `top`: t, T, b and L over a recording (one that spans midnight), over the
polls of a live session, the moments `b` accepts, and the bound on what a live session keeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_devops.errors import UsageError
from cli_devops.model import Instance
from cli_devops.top.prompt import TimePrompt
from cli_devops.top.recording import encode
from cli_devops.top.screens import FleetScreen, ServiceScreen
from cli_devops.top.source import FleetReading as Reading
from cli_devops.top.travel import KeptPolls, index_at, parse_when

from .top_helpers import session, static_text, table_lines, until

SIZE = (130, 30)
START = datetime(2026, 12, 4, 23, 57, tzinfo=UTC)
POLLS = 7
"""One a minute from 23:57 to 00:03 UTC: the recording spans midnight."""


def moment(index: int) -> datetime:
    return START + timedelta(minutes=index)


def local(index: int) -> str:
    return moment(index).astimezone().strftime("%H:%M:%S")


def write_recording(path: str) -> None:
    """Poll i has Api's one instance at 10 + i percent CPU, so each sample is told apart."""
    with Path(path).open("w", encoding="utf-8") as out:
        for index in range(POLLS):
            instances = [
                Instance("10.0.0.1", "Api", 10.0 + index, 20.0),
                Instance("10.0.0.2", "Api", 10.0 + index, 20.0),
                Instance("10.0.0.3", "Db", 30.0, 30.0),
            ]
            out.write(encode(Reading(moment(index), instances)) + "\n")


def api_cpu(console: object) -> str:
    for line in table_lines(console)[1:]:  # type: ignore[arg-type]
        if "Api" in line.split():
            return next(cell for cell in line.split() if cell.endswith("%"))
    raise AssertionError("no Api row")


def shown_at(console: object, index: int) -> bool:
    header = static_text(console, "#header")  # type: ignore[arg-type]
    return f"at {local(index)}" in header and api_cpu(console) == f"{10 + index}%"


def said(console: object, text: str) -> bool:
    return any(text in str(note.message) for note in console._notifications)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_replay_opens_at_a_moment_and_steps_jumps_and_plays_on(tmp_path):
    path = str(tmp_path / "night.jsonl")
    write_recording(path)

    async def scenario() -> None:
        opened = START + timedelta(minutes=3, seconds=30)  # between two polls: the earlier one
        console = session("http://127.0.0.1:9", replay=path, speed=1000, at=opened).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame and shown_at(console, 3))
            assert "PAUSED" in static_text(console, "#header")
            await pilot.press("T")
            await until(pilot, lambda: shown_at(console, 2))
            await pilot.press("t", "t")
            await until(pilot, lambda: shown_at(console, 4))
            await pilot.press("b")
            await until(pilot, lambda: isinstance(console.screen, TimePrompt))
            await pilot.press(*"-2m", "enter")  # counted from the moment on screen
            await until(pilot, lambda: shown_at(console, 2))
            await pilot.press("b", *moment(5).isoformat(), "enter")  # after midnight
            await until(pilot, lambda: shown_at(console, 5))
            await pilot.press("b", *"tomorrow", "enter")
            await until(pilot, lambda: "not a time" in static_text(console, "#when-error"))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(console.screen, FleetScreen))
            assert shown_at(console, 5)
            await pilot.press("L")  # a recording has no live end: it plays on to its last poll
            await until(pilot, lambda: shown_at(console, POLLS - 1))
            assert "end of recording" in static_text(console, "#header")
            assert "PAUSED" not in static_text(console, "#header")
            await pilot.press("q")
        assert console.failure is None

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_jump_before_the_recording_says_so_and_stays(tmp_path):
    path = str(tmp_path / "night.jsonl")
    write_recording(path)

    async def scenario() -> None:
        console = session("http://127.0.0.1:9", replay=path, speed=1000).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame and shown_at(console, POLLS - 1))
            await pilot.press("b", *(START - timedelta(hours=1)).isoformat(), "enter")
            await until(pilot, lambda: said(console, "no poll at or before"))
            assert shown_at(console, POLLS - 1)
            await pilot.press("q")
        assert console.failure is None

    asyncio.run(scenario())


def test_replay_at_before_the_recording_is_one_usage_error(tmp_path):
    path = str(tmp_path / "night.jsonl")
    write_recording(path)
    with pytest.raises(UsageError, match=r"the recording starts at 2026-12-04T23:57:00.000Z"):
        session("http://127.0.0.1:9", replay=path, at=START - timedelta(seconds=1))


def test_live_steps_back_through_the_polls_it_kept_and_returns(sim):
    async def scenario() -> None:
        console = session(sim.url, interval=3600).console
        async with console.run_test(size=SIZE) as pilot:
            for polls in (1, 2, 3):
                await until(pilot, lambda n=polls: console.frame and console.frame.polls == n)
                if polls < 3:
                    await pilot.press("r")
            third = console.frame
            assert third is not None and not third.historic
            await pilot.press("T")
            await until(pilot, lambda: console.frame and console.frame.historic)
            header = static_text(console, "#header")
            assert "HISTORIC" in header
            await pilot.press("T", "T")  # past the oldest: stays on it
            await until(pilot, lambda: console.frame.polls == 1)
            assert "HISTORIC" in static_text(console, "#header")
            await pilot.press("r")  # a poll meanwhile is kept, the view stays in the past
            await until(pilot, lambda: len(console.feed.kept) == 4)  # type: ignore[union-attr]
            assert console.frame.historic and console.frame.polls == 1
            await pilot.press("t")
            await until(pilot, lambda: console.frame.polls == 2 and console.frame.historic)
            await pilot.press("escape")  # out of the past, on the fleet screen
            await until(pilot, lambda: not console.frame.historic)
            assert console.frame.polls == 4
            assert "HISTORIC" not in static_text(console, "#header")
            await pilot.press("T", "enter")  # drilling down works in the past too
            await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(console.screen, FleetScreen))
            assert console.frame.historic
            await pilot.press("L")
            await until(pilot, lambda: not console.frame.historic)
            await pilot.press("q")
        assert console.failure is None

    asyncio.run(scenario())


def test_kept_polls_are_bounded_and_read_back_as_they_were():
    kept = KeptPolls(polls=5, samples=12)
    readings = [
        Reading(
            moment(i),
            [
                Instance(f"10.0.0.{n}", "Api", float(i), None, "HTTP 500" if n == 1 else None)
                for n in range(1, 4)
            ],
        )
        for i in range(10)
    ]
    for reading in readings:
        kept.add(reading)
    assert len(kept) == 4  # 12 samples of 3 instances, fewer than 5 polls
    assert [kept.reading(i) for i in range(4)] == readings[6:]
    assert kept.dropped == 6
    kept.add(Reading(moment(10), [], "connection refused"))
    assert kept.reading(len(kept) - 1) == Reading(moment(10), [], "connection refused")


def test_index_at_takes_the_latest_sample_at_or_before():
    times = [10.0, 20.0, 30.0, 25.0]
    assert index_at(times, 9.9) is None
    assert index_at(times, 10.0) == 0
    assert index_at(times, 27.0) == 3
    assert index_at(times, 99.0) == 2


ON_SCREEN = datetime(2026, 12, 5, 0, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-5m", ON_SCREEN - timedelta(minutes=5)),
        ("5m ago", ON_SCREEN - timedelta(minutes=5)),
        ("+90s", ON_SCREEN + timedelta(seconds=90)),
        ("-1h30m", ON_SCREEN - timedelta(minutes=90)),
        ("2026-12-04T23:59:00Z", datetime(2026, 12, 4, 23, 59, tzinfo=UTC)),
        ("2026-12-05T01:00:00+01:00", datetime(2026, 12, 5, 0, 0, tzinfo=UTC)),
    ],
)
def test_b_accepts_durations_and_instants(text, expected):
    assert parse_when(text, ON_SCREEN) == expected


def test_b_takes_a_time_of_day_on_the_day_on_screen():
    local = ON_SCREEN.astimezone()
    found = parse_when("00:00", ON_SCREEN)
    assert found.date() == local.date()
    assert (found.hour, found.minute, found.second) == (0, 0, 0)
    assert parse_when("7:05:09", ON_SCREEN).strftime("%H:%M:%S") == "07:05:09"


@pytest.mark.parametrize(
    "text",
    ["", "24:00", "12:60", "yesterday", "-5 minutes", "2026-12-04", "2026-12-04T23:59:00",
     "-99999999h", "\x1b[2J", "9" * 100, "--5m", "+", "12:00:00:00"],
)  # fmt: skip
def test_b_refuses_what_names_no_moment_in_one_line(text):
    with pytest.raises(UsageError) as raised:
        parse_when(text, ON_SCREEN)
    assert "\n" not in str(raised.value)
    assert "\x1b" not in str(raised.value)


@given(st.text(max_size=80))
def test_b_answers_any_text_with_a_moment_or_one_line(text):
    try:
        found = parse_when(text, ON_SCREEN)
    except UsageError as err:
        message = str(err)
        assert "\n" not in message
        assert all(c.isprintable() for c in message)
    else:
        assert found.tzinfo is not None
        found.astimezone().strftime("%H:%M:%S")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "12:00"], "--at: '12:00' is not a time; type an RFC 3339 instant like "
         "2026-12-04T17:00:00Z"),
        (["--at", ""], "--at: not a time; type an RFC 3339 instant like 2026-12-04T17:00:00Z"),
        (["--at", "2026-12-04T17:00:00"], "--at: '2026-12-04T17:00:00' is not a time"),
        (["--at", "\x1b[2J"], "--at: not a time"),
    ],
)  # fmt: skip
def test_replay_at_in_the_wrong_shape_is_one_usage_error(cli, tmp_path, args, message):
    path = tmp_path / "night.jsonl"
    write_recording(str(path))
    result = cli("top", "--replay", str(path), *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cli_devops: error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["top", "--at", "-5m"], "--at needs --replay FILE or --prometheus-url"),
        (["top", "--all-contexts", "--record", "x"], "give --record or --all-contexts, not both"),
        (["top", "--all-contexts", "--at", "-5m"], "give --at or --all-contexts, not both"),
    ],
)
def test_top_options_that_do_not_combine_are_one_usage_error(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=80))
def test_any_replay_at_is_exit_2_in_one_line(tmp_path_factory, cli, text):
    path = tmp_path_factory.getbasetemp() / "any-at.jsonl"
    if not path.exists():
        write_recording(str(path))
    result = cli("top", "--replay", str(path), "--at", text)
    assert result.exit_code == 2  # refused, or valid and then: not a terminal
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "\x1b" not in result.stderr
