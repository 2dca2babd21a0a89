"""The outlier rule (health.outliers): planted fleets, properties, and the commands that show it."""

from __future__ import annotations

import json
import statistics
from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_devops.health import outliers
from cli_devops.model import Instance
from cli_devops.simulator import Fleet, SimInstance, SimulatorServer


def service(name: str, cpus: list[float], memory: float = 40.0, base: int = 1) -> list[Instance]:
    return [Instance(f"10.1.{base}.{n}", name, cpu, memory) for n, cpu in enumerate(cpus, start=1)]


TIGHT = [50.0, 54.0, 46.0, 52.0, 48.0, 53.0, 47.0]
"""A service within ±4 points of 50."""


def test_one_instance_40_points_off_a_tight_service_is_flagged():
    fleet = service("Api", [*TIGHT, 90.0])
    assert outliers(fleet) == {"10.1.1.8"}


def test_12_points_off_is_not_flagged():
    assert outliers(service("Api", [*TIGHT, 62.0])) == set()


def test_memory_counts_as_much_as_cpu():
    fleet = [*service("Api", TIGHT), Instance("10.9.9.9", "Api", 50.0, 95.0)]
    assert outliers(fleet) == {"10.9.9.9"}


def test_needs_five_read_instances():
    four = service("Api", [50, 50, 50, 95])
    assert outliers(four) == set()
    unread = [Instance("10.2.0.1", "Api", None, None, "HTTP 500")]
    assert outliers(four + unread) == set()  # an unread instance does not count
    assert outliers([*service("Api", [50, 50, 50, 50, 95])]) == {"10.1.1.5"}


def test_services_are_judged_apart():
    # 90 is ordinary among the busy service's instances, off among the quiet one's.
    busy = service("Busy", [88, 90, 92, 89, 91], base=1)
    quiet = service("Quiet", [10, 12, 11, 9, 90], base=2)
    assert outliers(busy + quiet) == {"10.1.2.5"}


def test_a_widely_spread_service_has_no_outlier():
    assert outliers(service("Api", [5, 25, 45, 65, 85, 100])) == set()


percent = st.integers(0, 100).map(float)


@given(st.lists(percent, min_size=0, max_size=30), st.lists(percent, min_size=0, max_size=30))
def test_rule_matches_its_definition(cpus: list[float], memories: list[float]):
    size = min(len(cpus), len(memories))
    fleet = [
        Instance(f"10.0.0.{n + 1}", "Api", cpu, memory)
        for n, (cpu, memory) in enumerate(zip(cpus[:size], memories[:size], strict=False))
    ]
    flagged = outliers(fleet)
    if size < 5:
        assert flagged == set()
        return
    expected = set()
    for values in (cpus[:size], memories[:size]):
        median = statistics.median(values)
        mad = statistics.median(abs(v - median) for v in values)
        for instance, value in zip(fleet, values, strict=False):
            distance = abs(value - median)
            if distance > 3.5 * 1.4826 * mad and distance >= 20:
                expected.add(instance.ip)
    assert flagged == expected
    # Never an instance close to the median in both figures.
    cpu_median, memory_median = statistics.median(cpus[:size]), statistics.median(memories[:size])
    for instance in fleet:
        assert instance.cpu is not None and instance.memory is not None
        if abs(instance.cpu - cpu_median) < 20 and abs(instance.memory - memory_median) < 20:
            assert instance.ip not in flagged


@given(st.lists(percent, min_size=5, max_size=20), st.floats(-20, 20))
def test_shifting_a_whole_service_changes_nothing(cpus: list[float], shift: float):
    if min(cpus) + shift < 0 or max(cpus) + shift > 100:
        shift = 0.0
    fleet = service("Api", cpus)
    moved = service("Api", [cpu + shift for cpu in cpus])
    assert outliers(fleet) == outliers(moved)


@pytest.fixture
def planted_sim():
    members = {f"10.0.0.{n}": SimInstance("Api", 50 + d, 40) for n, d in enumerate(
        [0, 3, -3, 4, -4, 2], start=1)}  # fmt: skip
    members["10.0.0.7"] = SimInstance("Api", 90, 40)  # 40 points off
    members["10.0.0.8"] = SimInstance("Web", 20, 20)
    server = SimulatorServer(Fleet(members, drift=False), "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def test_services_json_and_table_show_the_outlier(cli, planted_sim):
    result = cli("--cp-url", planted_sim.url, "services", "-o", "json")
    assert result.exit_code == 0, result.stderr
    flags = {record["ip"]: record["outlier"] for record in json.loads(result.stdout)}
    assert flags == {**{f"10.0.0.{n}": False for n in range(1, 9)}, "10.0.0.7": True}

    # Filtering by status keeps the verdict made over the whole service.
    result = cli("--cp-url", planted_sim.url, "services", "--sort", "cpu", "--service", "Api")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["IP", "Service", "Status", "CPU", "Memory", "Note"]
    assert lines[1].split() == ["10.0.0.7", "Api", "Healthy", "90%", "40%", "outlier"]
    assert lines[2].split() == ["10.0.0.4", "Api", "Healthy", "54%", "40%"]


def test_status_json_and_table_count_outliers(cli, planted_sim):
    result = cli("--cp-url", planted_sim.url, "status", "-o", "json")
    assert {r["service"]: r["outliers"] for r in json.loads(result.stdout)} == {"Api": 1, "Web": 0}
    result = cli("--cp-url", planted_sim.url, "status")
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:3]}
    assert rows["Api"][:6] == ["Api", "7", "7", "0", "0", "1"]


def test_tracks_live_view_notes_the_outlier_as_top_does():
    import io
    from datetime import datetime

    from rich.console import Console

    from cli_devops.history import TrackState
    from cli_devops.track.live import build_view

    state = TrackState(service="Api", base_url="http://127.0.0.1:9", interval=3.0)
    members = service("Api", [*TIGHT, 90.0])
    state.begin_poll(0.0)
    state.record(members, moment=datetime(2026, 1, 1, tzinfo=UTC), clock=0.1)
    console = Console(file=io.StringIO(), width=120, height=30, color_system=None)
    console.print(build_view(state, now=1.0, width=120, height=30))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    header = next(line for line in lines if line.lstrip().startswith("IP"))
    assert header.split()[-1] == "Note"
    flagged = [line for line in lines if "outlier" in line]
    assert [line.split()[0] for line in flagged] == ["10.1.1.8"]


def test_a_service_moved_as_a_whole_keeps_an_outlier_at_exactly_the_floor():
    # 32.4 - 12.4 is 19.999999999999996 in floating point: still the 20-point floor.
    cpus = [0.0, 9.0, 12.0, 12.0, 32.0]
    assert outliers(service("Api", cpus)) == {"10.1.1.5"}
    assert outliers(service("Api", [cpu + 0.40295218320635584 for cpu in cpus])) == {"10.1.1.5"}
