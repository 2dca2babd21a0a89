"""`top` headless against the bundled simulator: rows, filter, drill-down, keys, outages."""

from __future__ import annotations

import asyncio
import re

import pytest

from cli_devops.simulator import Fleet, SimInstance, SimulatorServer
from cli_devops.top.instance import InstanceScreen
from cli_devops.top.keys import HelpScreen
from cli_devops.top.screens import FleetScreen, ServiceScreen
from cli_devops.top.table import RowTable

from .top_helpers import session, static_text, table_lines, until

SIZE = (130, 30)


@pytest.mark.slow
def test_fleet_rows_worst_first_then_filter_drill_down_and_back(sim):
    async def scenario() -> None:
        console = session(sim.url, interval=0.2).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None)
            header, *rows = table_lines(console)
            assert header.split()[:7] == ["Status▼", "Service", "Healthy", "Unhealthy",
                                          "Unknown", "Outliers", "CPU"]  # fmt: skip
            assert [row.split()[:7] for row in rows] == [
                ["Unhealthy", "MLService", "0/2", "2", "0", "0", "64%"],
                ["Unhealthy", "AuthService", "1/2", "1", "0", "0", "73%"],
                ["Healthy", "GeoService", "2/3", "1", "0", "0", "6%"],
                ["Healthy", "UserService", "2/3", "1", "0", "0", "64%"],
            ]
            assert "a service needs 2 healthy" in static_text(console, "#place")
            totals = static_text(console, "#totals")
            assert totals.startswith("10 instances in 4 services: 5 healthy, 5 unhealthy")
            assert "2 under-replicated (fewer than 2 healthy)" in totals

            await pilot.press("slash", *"uSer", "enter")
            assert [row.split()[1] for row in table_lines(console)[1:]] == ["UserService"]
            assert "filter: uSer" in static_text(console, "#place")

            await pilot.press("enter")
            await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
            header, *rows = table_lines(console)
            assert header.split()[:3] == ["IP", "Status▼", "CPU"]
            assert [(r.split()[0], r.split()[1], r.split()[2]) for r in rows] == [
                ("10.0.0.10", "Unhealthy", "91%"),
                ("10.0.0.2", "Healthy", "90%"),
                ("10.0.0.1", "Healthy", "10%"),
            ]
            assert "Fleet › UserService" in static_text(console, "#place")

            # Filter on the service screen: by status, then by IP.
            await pilot.press("slash", *"unhealthy", "enter")
            assert [row.split()[0] for row in table_lines(console)[1:]] == ["10.0.0.10"]
            await pilot.press("slash", "ctrl+a", "ctrl+k", *"0.0.1", "enter")
            shown = [row.split()[0] for row in table_lines(console)[1:]]
            assert shown == ["10.0.0.10", "10.0.0.1"]  # worst first

            await pilot.press("down", "enter")
            await until(pilot, lambda: isinstance(console.screen, InstanceScreen))
            body = static_text(console, "#body")
            assert body.startswith("Fleet › UserService › 10.0.0.1\nHealthy")
            assert "CPU 10%" in body and "Memory 20%" in body

            await pilot.press("escape")
            assert isinstance(console.screen, ServiceScreen)
            await pilot.press("backspace")
            assert isinstance(console.screen, FleetScreen)
            await pilot.press("escape")  # nothing above the fleet: stays
            assert isinstance(console.screen, FleetScreen)
            await pilot.press("q")
        assert console.return_code in (None, 0)
        assert console.failure is None

    asyncio.run(scenario())


@pytest.mark.slow
def test_q_typed_in_the_filter_is_text_and_escape_cancels_the_filter(sim):
    async def scenario() -> None:
        console = session(sim.url, interval=0.2).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None)
            await pilot.press("slash", "q", "r", "p")
            assert console.is_running and not console.paused
            await pilot.press("escape")  # closes the filter box without applying it
            assert len(table_lines(console)) == 5
            await pilot.press("question_mark")
            assert isinstance(console.screen, HelpScreen)
            await pilot.press("escape")
            assert isinstance(console.screen, FleetScreen)
            await pilot.press("q")
        assert not console.is_running

    asyncio.run(scenario())


def test_pause_freezes_the_view_while_polls_go_on_and_sort_cycles(sim, fleet):
    async def scenario() -> None:
        console = session(sim.url, interval=0.1).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None)
            await pilot.press("p")
            assert "PAUSED" in static_text(console, "#header")
            shown = console.frame
            assert shown is not None
            fleet.instances["10.0.0.7"] = SimInstance("GeoService", 99, 5)
            await until(pilot, lambda: console.latest is not None and console.latest.polls
                        > shown.polls + 2)  # fmt: skip
            assert console.frame is shown
            geo = next(line for line in table_lines(console) if "GeoService" in line)
            assert geo.split()[3] == "1"  # still one unhealthy instance on screen
            await pilot.press("p")
            assert "PAUSED" not in static_text(console, "#header")
            geo = next(line for line in table_lines(console) if "GeoService" in line)
            assert geo.split()[3] == "2"

            await pilot.press("s")  # Status -> Service (by name)
            names = [line.split()[1] for line in table_lines(console)[1:]]
            assert names == ["AuthService", "GeoService", "MLService", "UserService"]
            assert "Service▲" in table_lines(console)[0]  # A to Z
            await pilot.press("q")

    asyncio.run(scenario())


def test_r_polls_now(sim):
    async def scenario() -> None:
        console = session(sim.url, interval=3600).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None)
            assert console.frame is not None and console.frame.polls == 1
            await pilot.press("r")
            await until(pilot, lambda: console.frame is not None and console.frame.polls == 2)
            await pilot.press("q")

    asyncio.run(scenario())


def planted_fleet() -> Fleet:
    members = {f"10.0.0.{n}": SimInstance("Api", 50 + d, 40) for n, d in enumerate(
        [0, 3, -3, 4, -4, 2], start=1)}  # fmt: skip
    members["10.0.0.7"] = SimInstance("Api", 90, 40)
    return Fleet(members, drift=False)


def test_outlier_counted_on_the_fleet_and_noted_on_the_service_screen():
    with SimulatorServer(planted_fleet(), "127.0.0.1", 0) as server:

        async def scenario() -> None:
            console = session(server.url, interval=0.2).console
            async with console.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: console.frame is not None)
                assert table_lines(console)[1].split()[:6] == [
                    "Healthy", "Api", "7/7", "0", "0", "1"
                ]  # fmt: skip
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
                await pilot.press("s")  # Status -> CPU, busiest first
                first = table_lines(console)[1]
                assert first.split()[:3] == ["10.0.0.7", "Healthy", "90%"]
                assert first.endswith("outlier")
                assert not any(line.endswith("outlier") for line in table_lines(console)[2:])
                await pilot.press("q")

        asyncio.run(scenario())


def test_an_outage_marks_the_data_stale_and_the_console_recovers(fleet):
    server = SimulatorServer(fleet, "127.0.0.1", 0)
    server.start()
    port = server.port

    async def scenario() -> None:
        nonlocal server
        console = session(server.url, interval=0.2).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None and console.frame.polls >= 2)
            server.stop()
            await until(pilot, lambda: console.frame is not None and console.frame.stale)
            await until(pilot, lambda: "STALE" in static_text(console, "#header"))
            header = static_text(console, "#header")
            assert re.search(r"⚠ STALE: data of poll \d+, \d+s old; last (poll|\d+ polls) "
                             r"failed: \w", header), header  # fmt: skip
            assert len(table_lines(console)) == 5  # the last data is still shown
            server = SimulatorServer(fleet, "127.0.0.1", port)
            server.start()
            await until(pilot, lambda: console.frame is not None and not console.frame.stale)
            await until(pilot, lambda: "STALE" not in static_text(console, "#header"))
            assert console.frame is not None and console.frame.failed >= 1
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
def test_quit_keys_stop_the_poll_thread(sim, key):
    import threading

    async def scenario() -> None:
        console = session(sim.url, interval=0.1).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None)
            await pilot.press(key)
        assert not console.is_running

    asyncio.run(scenario())
    assert not any(thread.name == "top-poll" for thread in threading.enumerate())


def test_clicking_a_header_sorts_by_that_column(sim):
    async def scenario() -> None:
        console = session(sim.url, interval=0.2).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None)
            header = table_lines(console)[0]
            await pilot.click(RowTable, offset=(header.index("Healthy") + 1, 0))
            assert "Healthy▼" in table_lines(console)[0]
            counts = [int(line.split()[2].split("/")[0]) for line in table_lines(console)[1:]]
            assert counts == sorted(counts, reverse=True)
            await pilot.click(RowTable, offset=(header.index("Service") + 1, 0))
            names = [line.split()[1] for line in table_lines(console)[1:]]
            assert names == ["AuthService", "GeoService", "MLService", "UserService"]
            await pilot.press("q")

    asyncio.run(scenario())


def test_an_unwritable_recording_is_a_write_error(sim, tmp_path):
    from cli_devops.errors import CannotWrite

    with pytest.raises(CannotWrite, match=r"^cannot write the recording .*: No such file"):
        session(sim.url, record=str(tmp_path / "missing" / "night.jsonl"))


def test_no_color_draws_in_monochrome(sim):
    from cli_devops.environment import Environment
    from cli_devops.run_config import RunConfig
    from cli_devops.settings import ClientSettings
    from cli_devops.top.command import TopOptions, prepare

    plain = prepare(RunConfig(ClientSettings(base_url=sim.url), env=Environment(color=False)),
                    TopOptions()).console  # fmt: skip
    coloured = session(sim.url).console
    assert plain.no_color
    assert not coloured.no_color


def test_enter_right_after_the_filter_opens_the_service(sim):
    async def scenario() -> None:
        console = session(sim.url, interval=0.2).console
        async with console.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: console.frame is not None)
            await pilot.press("slash", *"geo", "enter", "enter")  # no pause between the two
            await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
            assert [line.split()[0] for line in table_lines(console)[1:]] == [
                "10.0.0.9", "10.0.0.8", "10.0.0.7"
            ]  # fmt: skip
            await pilot.press("q")

    asyncio.run(scenario())
