"""SVG snapshots of each `top` screen, from a fixed recording (so every run draws the same).

After a deliberate change of the screens: `pytest tests/test_top_snapshots.py --snapshot-update`
and review the SVGs under tests/__snapshots__/.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli_devops.model import Instance
from cli_devops.top.recording import encode
from cli_devops.top.source import FleetReading

from .top_helpers import session, until

SIZE = (120, 30)
START = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def planted_recording(path: Path) -> str:
    """Twelve polls, a minute apart: an under-replicated service, an outlier, an unreadable
    instance, and a memory leak heading for 90% (a point a minute from 30%)."""
    with path.open("w") as out:
        for n in range(12):
            api = [Instance(f"10.0.1.{i}", "ApiService", 40 + i, 30 + i) for i in range(1, 6)]
            api.append(Instance("10.0.1.6", "ApiService", 95, 32))  # the outlier
            api.append(Instance("10.0.1.7", "ApiService", 42, 30 + n))  # the leak
            fleet = [
                *api,
                Instance("10.0.2.1", "BillingService", 20, 20),
                Instance("10.0.2.2", "BillingService", 97, 40),
                Instance("10.0.3.1", "SearchService", 35, 45),
                Instance("10.0.3.2", "SearchService", 36, 47),
                Instance("10.0.3.3", None, None, None, "HTTP 503"),
            ]
            moment = START + timedelta(minutes=n)
            out.write(encode(FleetReading(moment, fleet)) + "\n")
    return str(path)


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield planted_recording(tmp_path / "night.jsonl")
    monkeypatch.undo()
    time.tzset()


def console_for(path: str):  # type: ignore[no-untyped-def]
    return session("http://127.0.0.1:9", replay=path, speed=1000).console


async def at_end(pilot) -> None:  # type: ignore[no-untyped-def]
    console = pilot.app
    await until(pilot, lambda: console.frame and console.frame.replay
                and console.frame.replay.ended)  # fmt: skip
    await pilot.pause()


def test_fleet_screen(snap_compare, recorded):
    assert snap_compare(console_for(recorded), terminal_size=SIZE, run_before=at_end)


def test_service_screen(snap_compare, recorded):
    async def open_api(pilot) -> None:  # type: ignore[no-untyped-def]
        await at_end(pilot)
        await pilot.press("slash", *"api", "enter", "enter")
        await pilot.pause()

    assert snap_compare(console_for(recorded), terminal_size=SIZE, run_before=open_api)


@pytest.mark.slow
def test_instance_screen(snap_compare, recorded):
    async def open_leak(pilot) -> None:  # type: ignore[no-untyped-def]
        await at_end(pilot)
        await pilot.press("slash", *"api", "enter", "enter")
        await pilot.press("slash", *"10.0.1.7", "enter", "enter")
        await pilot.pause()

    assert snap_compare(console_for(recorded), terminal_size=SIZE, run_before=open_leak)


def test_help_screen(snap_compare, recorded):
    async def open_help(pilot) -> None:  # type: ignore[no-untyped-def]
        await at_end(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(console_for(recorded), terminal_size=SIZE, run_before=open_help)
