"""The `FleetSource` seam over the CPX API, against the simulator on loopback: one read within a
deadline, a shard's share, its notes, and what it says it cannot do."""

from __future__ import annotations

import asyncio

import pytest

from cli_devops.client import ClientSettings, Snapshot
from cli_devops.errors import ApiUnreachable
from cli_devops.run_config import RunConfig, open_source
from cli_devops.settings import PrometheusSettings
from cli_devops.simulator import Fleet, SimulatorServer
from cli_devops.sources.base import FleetSource, Unsupported


def read(source: FleetSource, **options: object) -> Snapshot:
    async def run() -> Snapshot:
        async with source:
            return await source.read(**options)  # type: ignore[arg-type]

    return asyncio.run(run())


def test_the_cpx_source_reads_the_whole_fleet(sim, fleet):
    source = open_source(RunConfig(ClientSettings(sim.url)))
    assert source.name == sim.url
    snapshot = read(source)
    assert [i.ip for i in snapshot.instances] == sorted(fleet.instances, key=lambda ip: tuple(
        int(part) for part in ip.split(".")))  # fmt: skip
    assert all(instance.error is None for instance in snapshot.instances)
    assert (snapshot.unrequested, snapshot.notes) == (0, ())


def test_a_shard_reads_only_what_it_owns(sim, fleet):
    owned = sorted(fleet.instances)[::2]
    snapshot = read(open_source(RunConfig(ClientSettings(sim.url))), owns=set(owned).__contains__)
    assert sorted(i.ip for i in snapshot.instances) == owned
    assert sum(sim.request_paths.get(f"/{ip}", 0) for ip in fleet.instances) == len(owned)


def test_a_deadline_leaves_the_rest_unrequested_and_last():
    fleet = Fleet.generate(40, seed=3)
    fleet.drift = False
    with SimulatorServer(fleet, latency_ms=300) as slow:
        settings = ClientSettings(slow.url, concurrency=2, retries=0)
        snapshot = read(open_source(RunConfig(settings)), deadline=1.5)
    assert 0 < snapshot.unrequested < 40
    tail = snapshot.instances[-snapshot.unrequested :]
    assert all(instance.error and "deadline" in instance.error for instance in tail)


def test_an_unreachable_api_raises_and_history_is_unsupported():
    source = open_source(RunConfig(ClientSettings("http://127.0.0.1:9", retries=0)))
    assert source.keeps_history is False
    with pytest.raises(ApiUnreachable):
        read(source)

    async def history() -> object:
        async with source:
            return await source.history(None, 0.0, 1.0, 1.0)

    with pytest.raises(Unsupported, match="keeps no history"):
        asyncio.run(history())


def test_prometheus_is_chosen_when_the_run_names_one():
    settings = ClientSettings("http://127.0.0.1:9")
    prometheus = PrometheusSettings(client=ClientSettings("http://127.0.0.1:10"))
    source = open_source(RunConfig(settings, prometheus=prometheus))
    assert (source.name, source.keeps_history) == ("http://127.0.0.1:10", True)
