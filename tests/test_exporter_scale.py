"""A large fleet's scrape is answered within its own timeout: the read stops early by what the
answer will take to build and send (learned per instance), whether the instances answer or
hang; the shard of an IP is computed without re-parsing it."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_devops.client import ClientSettings
from cli_devops.client.budget import ReadBudget
from cli_devops.exporter import Exporter, shard_of
from cli_devops.exporter.reader import ANSWER_COST, FleetReader
from cli_devops.simulator import Fleet, SimulatorServer
from cli_devops.sources.cpx import CpxSource

from .hostile import HostileCpx, hang, ips
from .scraping import get, samples


@given(st.ip_addresses(), st.integers(1, 64))
def test_the_shard_of_an_ip_is_the_crc_of_its_packed_address(address, count):
    expected = zlib.crc32(address.packed) % count
    assert shard_of(str(address), count) == expected
    assert shard_of(address.exploded, count) == expected


def test_each_instance_read_brings_the_deadline_earlier_by_its_share_of_the_answer():
    budget = ReadBudget(retries=0, deadline=10.0)
    budget.answer_cost = 0.001
    before = budget.remaining()
    budget.progress.read = 2000
    after = budget.remaining()
    assert before is not None and after is not None
    assert 1.9 < before - after < 2.1


def test_the_answer_cost_follows_a_slower_answer_at_once_and_a_faster_one_by_halves():
    reader = FleetReader(ClientSettings(), CpxSource(ClientSettings()))
    assert reader.answer_cost == ANSWER_COST
    reader.learn_answer_cost(10_000, 2.0)  # 200 us per instance
    assert reader.answer_cost == pytest.approx(200e-6)
    reader.learn_answer_cost(10_000, 0.0)
    assert reader.answer_cost == pytest.approx(100e-6)
    reader.learn_answer_cost(10, 100.0)  # too few instances to tell
    assert reader.answer_cost == pytest.approx(100e-6)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(url: str, timeout: float) -> Samples:
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}", "Accept-Encoding": "gzip"}
    answer = get(url, headers=headers)
    assert answer.status == 200
    body = gzip.decompress(answer.body) if answer.headers.get("content-encoding") else answer.body
    return samples(body.decode())


def _read(found: Samples) -> int:
    return sum(1 for key in found if key[0] == "cpx_instance_scrape_success")


@pytest.mark.slow
def test_a_scrape_stops_reading_in_time_to_send_what_it_read():
    fleet = Fleet.generate(50_000, seed=3)
    with (
        SimulatorServer(fleet) as sim,
        Exporter(ClientSettings(sim.url, concurrency=16)) as running,
    ):
        running.reader.answer_cost = 0.005  # as if each instance read took 5 ms to answer
        running.reader.learn_answer_cost = lambda instances, seconds: None  # type: ignore[method-assign]
        found = _scrape(running.url, 3.0)  # a deadline of 2.5 s
    read = _read(found)
    assert found["cpx_up", ()] == 1
    assert read > 0  # there was time to read: never an empty answer
    # The read ended when its time plus the answer's share of what it read reached the
    # deadline; the 16 requests in flight then may still finish, and a loaded machine may be
    # late by a few of the 5 ms shares.
    assert found["cpx_scrape_duration_seconds", ()] + 0.005 * (read - 16) <= 2.5 + 0.1
    assert found["cpx_scrape_unrequested_instances", ()] == 50_000 - read


@pytest.mark.slow
def test_the_answer_cost_is_learned_from_large_scrapes():
    fleet = Fleet.generate(20_000, seed=3)
    with SimulatorServer(fleet) as sim, Exporter(ClientSettings(sim.url)) as running:
        running.reader.answer_cost = 1e-9
        found = _scrape(running.url, 60.0)
        assert _read(found) == 20_000
        assert running.reader.answer_cost > 1e-9


@pytest.mark.slow
def test_a_scrape_of_a_large_hanging_fleet_lists_the_requests_cut_and_counts_the_rest():
    with HostileCpx(ips(200_000), hang) as cpx, Exporter(ClientSettings(cpx.url)) as running:
        found = _scrape(running.url, 2.0)
    assert found["cpx_up", ()] == 1
    assert found["cpx_scrape_unrequested_instances", ()] > 190_000
    cut = [value for key, value in found.items() if key[0] == "cpx_instance_scrape_success"]
    assert cut and not any(cut)  # the requests in flight at the deadline: each one a 0
