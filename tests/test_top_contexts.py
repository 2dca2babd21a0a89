"""`top --all-contexts`, headless: every context on one screen, a context that is down or slow
in a row of its own while the others go on, `/` over context names, drilling into a context's
service. Real simulators on loopback; a CPX stand-in that never answers for the slow one."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest

from cli_devops.environment import Environment
from cli_devops.health import Thresholds
from cli_devops.run_config import RunConfig
from cli_devops.settings import ClientSettings
from cli_devops.simulator import Fleet
from cli_devops.top.command import TopOptions, prepare
from cli_devops.top.contexts import ContextFeed, join
from cli_devops.top.instance import InstanceScreen
from cli_devops.top.screens import FleetScreen, ServiceScreen
from cli_devops.top.source import FleetReading
from cli_devops.top.state import FleetState

from .scraping import GatedCpx
from .top_helpers import static_text, table_lines, until

SIZE = (130, 30)


def config(url: str, **settings: object) -> RunConfig:
    return RunConfig(
        ClientSettings(base_url=url, retries=0, **settings),  # type: ignore[arg-type]
        env=Environment(color=True),
    )


def rows_by_context(console: object) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for line in table_lines(console)[1:]:  # type: ignore[arg-type]
        cells = line.split()
        found.setdefault(cells[1], []).append(cells)
    return found


@pytest.mark.slow
def test_every_context_on_one_screen_a_stuck_and_a_down_one_in_their_own_rows(sim, other_sim):
    stuck = GatedCpx(Fleet({}, drift=False), hold=lambda path: True)
    with stuck:
        contexts = [
            ("prod", config(sim.url, timeout=2.0)),
            ("staging", config(other_sim.url, timeout=2.0)),
            ("gone", config("http://127.0.0.1:9", timeout=2.0)),
            ("stuck", config(stuck.url, timeout=30.0)),
        ]
        session = prepare(contexts[0][1], TopOptions(interval=0.3), contexts=contexts)
        console = session.console

        async def scenario() -> None:
            async with console.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: console.frame and {"prod", "staging", "gone"}
                            <= set(rows_by_context(console)))  # fmt: skip
                await until(pilot, lambda: rows_by_context(console).get("stuck", [[]])[0][:1]
                            == ["Slow"])  # fmt: skip
                polls = console.frame.polls
                await until(pilot, lambda: console.frame.polls >= polls + 2)  # others go on
                rows = rows_by_context(console)
                assert table_lines(console)[0].split()[:3] == ["Status▼", "Context", "Service"]
                assert rows["stuck"][0][:4] == ["Slow", "stuck", "no", "answer"]
                assert rows["gone"][0][:2] == ["Down", "gone"]
                assert [r[2] for r in rows["staging"]] == ["BillingService"]
                assert sorted(r[2] for r in rows["prod"]) == [
                    "AuthService", "GeoService", "MLService", "UserService"]  # fmt: skip
                totals = static_text(console, "#totals")
                assert totals.startswith("12 instances in 5 services")
                assert "4 contexts" in static_text(console, "#header")

                await pilot.press("slash", *"stag", "enter")  # context names match too
                await until(pilot, lambda: set(rows_by_context(console)) == {"staging"})
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
                await until(pilot, lambda: len(table_lines(console)) == 3)
                assert "Fleet › staging › BillingService" in static_text(console, "#place")
                assert [line.split()[0] for line in table_lines(console)[1:]] == [
                    "10.9.0.2", "10.9.0.1"]  # fmt: skip
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(console.screen, InstanceScreen))
                await until(pilot, lambda: "staging › BillingService › 10.9.0.2"
                            in static_text(console, "#body"))  # fmt: skip
                await pilot.press("escape", "escape")
                await until(pilot, lambda: isinstance(console.screen, FleetScreen))
                await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")
                await until(pilot, lambda: "stuck" in rows_by_context(console))
                await pilot.press("T")  # every context as it was one interval back
                await until(pilot, lambda: console.frame.historic)
                assert "HISTORIC" in static_text(console, "#header")
                rows = rows_by_context(console)
                assert rows["gone"][0][:2] == ["Down", "gone"]
                assert [r[2] for r in rows["staging"]] == ["BillingService"]
                assert rows["stuck"][0][:1] == ["Waiting"]  # no read of it was ever kept
                await pilot.press("L")
                await until(pilot, lambda: not console.frame.historic)
                assert rows_by_context(console)["stuck"][0][:1] == ["Slow"]
                await pilot.press("q")

        asyncio.run(scenario())
    assert console.failure is None


def test_joining_contexts_adds_their_totals_and_keys_services_by_context():
    def state(name: str, instances: list[tuple[str, str, float]]) -> ContextFeed:
        from datetime import datetime

        from cli_devops.model import Instance

        fleet = FleetState(name, interval=1, thresholds=Thresholds(), min_healthy=1, history=5)
        reading = FleetReading(
            datetime(2026, 12, 4, tzinfo=UTC),
            [Instance(ip, service, cpu, 10.0) for ip, service, cpu in instances],
        )
        fleet.apply(reading, 1.0)
        context = ContextFeed(name, None, fleet, 5.0)  # type: ignore[arg-type]
        context.frame = fleet.frame(1.0)
        return context

    a = state("a", [("10.0.0.1", "Api", 50.0), ("10.0.0.2", "Api", 99.0)])
    b = state("b", [("10.0.0.1", "Api", 10.0)])  # the same IP and service, another fleet
    frame = join([a, b], 2.0, 1.0)
    assert frame.totals.instances == 3
    assert frame.totals.unhealthy == 1
    assert [(row.context, row.service, row.instances) for row in frame.services] == [
        ("a", "Api", 2), ("b", "Api", 1)]  # fmt: skip
    assert {key: [r.cpu for r in rows] for key, rows in frame.instances.items()} == {
        "a\x00Api": [50.0, 99.0], "b\x00Api": [10.0]}  # fmt: skip
    waiting = ContextFeed("c", None, a.state.empty(), 5.0)  # type: ignore[arg-type]
    waiting.reading_since = 0.5
    frame = join([a, waiting], 2.0, 1.0)
    assert [(row.context, row.status) for row in frame.services][-1] == ("c", "Slow")


def test_the_past_of_every_context_is_each_ones_latest_read_at_or_before_the_moment():
    from datetime import datetime, timedelta

    from cli_devops.model import Instance
    from cli_devops.top.contexts import past

    start = datetime(2026, 12, 4, 23, 59, tzinfo=UTC)

    def context(name: str, minutes: list[int]) -> ContextFeed:
        fleet = FleetState(name, interval=60, thresholds=Thresholds(), min_healthy=1, history=5)
        feed = ContextFeed(name, None, fleet, 5.0)  # type: ignore[arg-type]
        for minute in minutes:
            moment = start + timedelta(minutes=minute)
            feed.kept.add(FleetReading(moment, [Instance("10.0.0.1", "Api", float(minute), 1.0)]))
        return feed

    a = context("a", [0, 1, 2, 3])
    b = context("b", [2, 3])  # read only from 00:01 on
    frame = past([a, b], (start + timedelta(minutes=1, seconds=30)).timestamp(), 60)
    assert frame.historic
    assert [(row.context, row.status) for row in frame.services] == [
        ("a", "Healthy"), ("b", "Waiting")]  # fmt: skip
    assert frame.services[1].note.startswith("no read kept from ")
    assert [row.cpu for row in frame.instances["a\x00Api"]] == [1.0]
    assert frame.moment == start + timedelta(minutes=1)
    frame = past([a, b], (start + timedelta(minutes=3)).timestamp(), 60)
    assert [row.cpu_trend for row in frame.services] == [(0.0, 1.0, 2.0, 3.0), (2.0, 3.0)]
