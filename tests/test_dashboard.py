"""Every panel of the Grafana dashboard, evaluated by a real Prometheus, against the fleet's truth.

Two exporter shards read one simulator; the dashboard's expressions are run as Grafana runs
them (job `cpx`, every service) with both shards up, then with shard 1 unable to read CPX, then
with shard 1 not scraped at all. A panel either shows the truth computed from the fleet or,
where a down shard makes the truth unknowable (a count over the whole fleet), no value: never a
number that is wrong.
"""

from __future__ import annotations

import collections
import json
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_devops.client import ClientSettings
from cli_devops.exporter import Exporter, Shard, shard_of
from cli_devops.simulator import Fleet, SimulatorServer

from .scraping import expected_samples, query, running_prometheus

pytestmark = [pytest.mark.system, pytest.mark.slow]

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "cpx-fleet.json"
SHARDS = 2
DOWN = 1
"""The shard taken down."""

Labels = tuple[tuple[str, str], ...]
Series = dict[Labels, float]


def fleet_of_the_report() -> Fleet:
    """60 instances, one service under-replicated; shard 0 alone would show three."""
    fleet = Fleet.generate(60, seed=4)
    fleet.drift = False
    return fleet


def panel_queries() -> dict[str, list[str]]:
    """Each panel's expressions as Grafana sends them with job `cpx` and every service."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        panel["title"]: [
            target["expr"].replace("$job", "cpx").replace("$service", ".*")
            for target in panel["targets"]
        ]
        for panel in dashboard["panels"]
    }


def evaluate(base: str, promql: str) -> Series:
    """An instant query's series by their labels (without the metric name and the job)."""
    data = query(base, "/api/v1/query", query=promql)
    assert isinstance(data, dict)
    return {
        tuple(sorted((k, v) for k, v in item["metric"].items() if k not in ("__name__", "job"))): (
            float(item["value"][1])
        )
        for item in data["result"]
    }


@dataclass
class State:
    """Which shards Prometheus can scrape (`scraped`) and which of those read CPX (`reading`)."""

    fleet: Fleet
    targets: list[str]
    scraped: set[int]
    reading: set[int]

    def owner(self, ip: str) -> int:
        return shard_of(ip, SHARDS)


def counts(state: State, rows: Series) -> Series:
    """A count over the whole fleet: known only while every shard reads CPX."""
    return rows if state.reading == set(range(SHARDS)) else {}


def truth(state: State) -> dict[str, list[Series]]:
    """What each panel must show in `state`, from the fleet itself."""
    facts = expected_samples(state.fleet)

    def per(name: str) -> dict[Labels, float]:
        return {labels: value for (metric, labels), value in facts.items() if metric == name}

    healthy = per("cpx_service_healthy_instances")
    instances = per("cpx_instance_healthy")
    unreadable = per("cpx_instance_scrape_success")
    read = [ip for ip in state.fleet.instances if state.owner(ip) in state.reading]

    def per_instance(name: str) -> Series:
        values = per(name)
        found: Series = {}
        for ip in read:
            service = ("cpx_service", state.fleet.instances[ip].service)
            target = ("instance", state.targets[state.owner(ip)])
            found[service, target, ("ip", ip)] = values[service, ("ip", ip)]
        return found

    def exporters(value: Callable[[int], float], shards: set[int]) -> Series:
        return {(("instance", state.targets[index]),): value(index) for index in sorted(shards)}

    return {
        "Services under-replicated": [
            counts(state, {(): sum(1 for value in healthy.values() if value < 2)})
        ],
        "Unhealthy instances": [
            counts(state, {(): sum(1 for value in instances.values() if value == 0)})
        ],
        "Unreadable instances": [
            counts(state, {(): sum(1 for value in unreadable.values() if value == 0)})
        ],
        "Exporters reading CPX": [{(): len(state.reading)}],
        "Healthy instances per service": [counts(state, healthy)],
        "Instances per service": [counts(state, per("cpx_service_instances"))],
        "CPU per instance": [per_instance("cpx_instance_cpu_usage_ratio")],
        "Memory per instance": [per_instance("cpx_instance_memory_usage_ratio")],
        "CPX API up, per exporter": [
            exporters(lambda index: float(index in state.reading), state.scraped),
            exporters(lambda index: float(index in state.scraped), set(range(SHARDS))),
        ],
    }


def mismatches(base: str, state: State) -> dict[str, object]:
    """Every panel whose query result differs from the truth, with both."""
    expected = truth(state)
    wrong: dict[str, object] = {}
    for title, queries in panel_queries().items():
        shown = [evaluate(base, promql) for promql in queries]
        if title == "Scrape duration, per exporter":
            # Time itself has no truth to compare with; each scraped exporter has a duration
            # within the scrape timeout, and no other series is shown.
            (durations,) = shown
            keys = {(("instance", state.targets[index]),) for index in state.scraped}
            if set(durations) != keys or not all(0 < value < 1 for value in durations.values()):
                wrong[title] = {"shown": durations, "expected keys": keys}
        elif shown != expected[title]:
            wrong[title] = {"shown": shown, "truth": expected[title]}
    return wrong


def test_every_panel_has_a_truth_to_compare_with():
    fleet = fleet_of_the_report()
    state = State(fleet, ["a:1", "b:2"], {0, 1}, {0, 1})
    assert set(panel_queries()) == {*truth(state), "Scrape duration, per exporter"}


def test_the_fleet_shows_the_reported_difference():
    # One service under-replicated in truth; counted from shard 0 alone, three: an unguarded
    # panel would show 3 with shard 1 down (what users reported), so this fleet tells them apart.
    fleet = fleet_of_the_report()
    healthy: collections.Counter[str] = collections.Counter()
    seen_by_shard_0: collections.Counter[str] = collections.Counter()
    for ip, instance in fleet.instances.items():
        ok = instance.cpu <= 90 and instance.memory <= 90
        healthy[instance.service] += ok
        if shard_of(ip, SHARDS) != DOWN:
            seen_by_shard_0[instance.service] += ok
    assert sum(1 for count in healthy.values() if count < 2) == 1
    assert sum(1 for count in seen_by_shard_0.values() if count < 2) == 3


def test_every_panel_shows_the_truth_or_nothing_with_a_shard_down(tmp_path):
    fleet = fleet_of_the_report()
    with ExitStack() as stack:
        # Each shard reads its own simulator of the one fleet, so shard 1 can lose CPX alone.
        cpx = [stack.enter_context(SimulatorServer(fleet)) for _ in range(SHARDS)]
        shards = [
            stack.enter_context(
                Exporter(ClientSettings(cpx[index].url, retries=0), shard=Shard(index, SHARDS))
            )
            for index in range(SHARDS)
        ]
        targets = [urllib.parse.urlsplit(shard.url).netloc for shard in shards]
        prometheus = stack.enter_context(running_prometheus(tmp_path, targets))
        seen: dict[str, object] = {}

        def settles_on(state: State) -> None:
            def shown_truly() -> bool:
                seen.clear()
                seen.update(mismatches(prometheus.url, state))
                return not seen

            prometheus.poll(shown_truly, seen)

        everyone = set(range(SHARDS))
        settles_on(State(fleet, targets, everyone, everyone))

        cpx[DOWN].stop()
        settles_on(State(fleet, targets, everyone, everyone - {DOWN}))

        shards[DOWN].stop()
        settles_on(State(fleet, targets, everyone - {DOWN}, everyone - {DOWN}))
