"""`top --record` and `--replay`: the file format, replaying without the API, damaged files."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_devops.errors import PayloadError
from cli_devops.model import Instance
from cli_devops.simulator import SimulatorServer
from cli_devops.top.recording import decode, encode, read_recording
from cli_devops.top.screens import ServiceScreen
from cli_devops.top.source import FleetReading

from .conftest import small_fleet
from .top_helpers import session, static_text, table_lines, until

SIZE = (130, 30)


def record_three_polls(path: str) -> tuple[list[str], list[str]]:
    """Run the console against a simulator for exactly three polls, recording them; returns the
    fleet table and UserService's table as shown at the third poll. The simulator is gone after."""
    server = SimulatorServer(small_fleet(), "127.0.0.1", 0)
    server.start()

    async def scenario() -> tuple[list[str], list[str]]:
        console = session(server.url, interval=3600, record=path).console
        async with console.run_test(size=SIZE) as pilot:
            for polls in (1, 2, 3):
                await until(pilot, lambda n=polls: console.frame and console.frame.polls == n)
                if polls < 3:
                    await pilot.press("r")
            fleet = table_lines(console)
            await pilot.press("slash", *"user", "enter", "enter")
            await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
            service = table_lines(console)
            await pilot.press("q")
        return fleet, service

    try:
        return asyncio.run(scenario())
    finally:
        server.stop()


def replay(path: str, drill: bool = True, **options: object) -> tuple[list[str], list[str], str]:
    async def scenario() -> tuple[list[str], list[str], str]:
        console = session("http://127.0.0.1:9", replay=path, speed=1000, **options).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame and console.frame.replay
                        and console.frame.replay.ended)  # fmt: skip
            await pilot.pause()
            fleet = table_lines(console)
            header = static_text(console, "#header")
            service = []
            if drill:
                await pilot.press("slash", *"user", "enter", "enter")
                await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
                service = table_lines(console)
            await pilot.press("q")
        assert console.failure is None
        return fleet, service, header

    return asyncio.run(scenario())


@pytest.mark.slow
def test_record_then_replay_without_the_api_shows_the_same(tmp_path):
    path = str(tmp_path / "night.jsonl")
    live_fleet, live_service = record_three_polls(path)

    lines = (tmp_path / "night.jsonl").read_text().splitlines()
    assert len(lines) == 3
    poll = json.loads(lines[0])
    assert list(poll) == ["time", "instances", "error"]
    assert poll["error"] is None
    assert datetime.fromisoformat(poll["time"].replace("Z", "+00:00")).tzinfo is not None
    by_ip = {i["ip"]: i for i in poll["instances"]}
    assert by_ip["10.0.0.3"] == {
        "ip": "10.0.0.3", "service": "AuthService", "cpu": 50.5, "memory": 40, "error": None
    }  # fmt: skip
    assert len(by_ip) == 10

    # The simulator is stopped: the replay reads the file only.
    fleet, service, header = replay(path)
    assert fleet == live_fleet
    assert service == live_service
    assert "replay of night.jsonl · poll 3 of 3" in header
    assert "end of recording" in header
    assert "skipped" not in header


@pytest.mark.slow
def test_a_truncated_recording_plays_what_it_can_and_says_so(tmp_path):
    path = tmp_path / "cut.jsonl"
    record_three_polls(str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(data.splitlines()[-1]) // 2])  # last line cut
    fleet, _, header = replay(str(path))
    assert "poll 2 of 2" in header
    assert "end of recording" in header
    assert "1 line of the recording skipped (cut short or corrupt)" in header
    assert [line.split()[1] for line in fleet[1:]] == [
        "MLService", "AuthService", "GeoService", "UserService"
    ]  # fmt: skip


def test_paused_replay_steps_back_and_on(tmp_path):
    start = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    path = tmp_path / "steps.jsonl"
    with path.open("w") as out:
        for n in range(5):
            instances = [Instance("10.0.0.1", "Api", 10.0 * (n + 1), 20.0)]
            out.write(encode(FleetReading(start + timedelta(seconds=n), instances)) + "\n")

    async def scenario() -> None:
        console = session("http://127.0.0.1:9", replay=str(path), speed=0.001).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame and console.frame.replay)
            await pilot.press("right")  # not paused: no stepping
            await pilot.press("p", "right", "right", "right")
            await until(pilot, lambda: console.frame.replay.position == 4)  # type: ignore[union-attr]
            assert table_lines(console)[1].split()[6] == "40%"
            await pilot.press("left", "left")
            await until(pilot, lambda: console.frame.replay.position == 2)  # type: ignore[union-attr]
            assert table_lines(console)[1].split()[6] == "20%"
            assert "PAUSED" in static_text(console, "#header")
            await pilot.press("q")

    asyncio.run(scenario())


def test_a_failed_poll_is_recorded_and_replays_as_stale(tmp_path):
    start = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    path = tmp_path / "outage.jsonl"
    ok = FleetReading(start, [Instance("10.0.0.1", "Api", 10, 20)])
    failed = FleetReading(start + timedelta(seconds=30), [], "connection refused")
    path.write_text(encode(ok) + "\n" + encode(failed) + "\n")
    _, _, header = replay(str(path), drill=False)
    assert "⚠ STALE: data of poll 1, 30s old; last poll failed: connection refused" in header


def test_replay_of_a_missing_file_is_a_usage_error(cli, tmp_path):
    from cli_devops.errors import UsageError

    with pytest.raises(UsageError, match=r"cannot read the recording .*: No such file"):
        session("http://127.0.0.1:9", replay=str(tmp_path / "none.jsonl"))


# The recording is untrusted input: anything at all is either a poll or a skipped line.

ips = st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "192.168.1.200"])
figures = st.one_of(st.none(), st.integers(0, 100), st.floats(0, 100, allow_nan=False))
instances = st.builds(
    Instance,
    ip=ips,
    service=st.one_of(st.none(), st.sampled_from(["Api", "Web", "Ünïcode svc"])),
    cpu=figures,
    memory=figures,
    error=st.one_of(st.none(), st.text(max_size=20)),
)
readings = st.builds(
    FleetReading,
    time=st.datetimes(timezones=st.just(UTC)),
    instances=st.lists(instances, max_size=5),
    error=st.one_of(st.none(), st.text(max_size=30)),
)


@given(readings)
def test_every_reading_round_trips(reading: FleetReading):
    back = decode(encode(reading))
    assert list(back.instances) == list(reading.instances)
    assert back.error == reading.error
    assert abs((back.time - reading.time).total_seconds()) < 0.001


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(st.lists(st.one_of(st.binary(max_size=60), json_values.map(
    lambda v: json.dumps(v).encode()), readings.map(lambda r: encode(r).encode()))))  # fmt: skip
def test_any_file_is_polls_plus_skipped_lines(lines: list[bytes]):
    flat = [part for line in lines for part in line.splitlines()]
    recording = read_recording(line + b"\n" for line in flat)
    counted = [line for line in flat if line.strip()]
    assert len(recording.readings) + recording.skipped == len(counted)


@given(st.text(max_size=200))
def test_decode_raises_only_its_own_error(line: str):
    with contextlib.suppress(PayloadError):
        decode(line)
