"""The concurrency limit: its rules driven by a fake clock, then the client against real servers
on loopback (the reference-like one that closes every connection, and the keep-alive simulator).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from cli_devops.client import ClientSettings, CpxClient
from cli_devops.client.concurrency import (
    CLOSE_LIMIT,
    INITIAL_LIMIT,
    LATENCY_FLOOR,
    MAX_LIMIT,
    AdaptiveLimiter,
    FixedLimiter,
    Ticket,
)
from cli_devops.simulator import Fleet, ReferenceServer, SimulatorServer

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return asyncio.run(main())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def round_trip(limiter: FixedLimiter, clock: Clock, rtt: float, *, congested: bool = False) -> None:
    """Fill every slot, let `rtt` pass, answer them all."""

    async def fill() -> list[Ticket]:
        return [await limiter.acquire() for _ in range(limiter.limit - limiter.in_flight)]

    tickets = run(fill)
    clock.now += rtt
    for ticket in tickets:
        limiter.release(ticket, congested=congested)


def adaptive(clock: Clock) -> AdaptiveLimiter:
    return AdaptiveLimiter(clock=clock)


def test_fixed_limit_is_never_exceeded_and_waiters_go_in_order() -> None:
    async def scenario() -> tuple[list[int], int]:
        limiter = FixedLimiter(2)
        first, second = await limiter.acquire(), await limiter.acquire()
        order: list[int] = []
        peak = 0

        async def wait(number: int) -> None:
            nonlocal peak
            ticket = await limiter.acquire()
            peak = max(peak, limiter.in_flight)
            order.append(number)
            await asyncio.sleep(0)
            limiter.release(ticket)

        waiting = [asyncio.ensure_future(wait(n)) for n in range(5)]
        await asyncio.sleep(0)
        assert order == []
        limiter.release(first)
        limiter.release(second)
        await asyncio.gather(*waiting)
        return order, max(peak, limiter.in_flight)

    order, peak = run(scenario)
    assert order == [0, 1, 2, 3, 4]
    assert peak == 2


def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    async def scenario() -> int:
        limiter = FixedLimiter(1)
        held = await limiter.acquire()
        first = asyncio.ensure_future(limiter.acquire())
        second = asyncio.ensure_future(limiter.acquire())
        never = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        never.cancel()  # cancelled while waiting
        limiter.release(held)  # hands the slot to `first` ...
        first.cancel()  # ... which is cancelled before it runs
        ticket = await second
        assert first.cancelled()
        assert never.cancelled()
        in_flight = limiter.in_flight
        limiter.release(ticket)
        return in_flight

    assert run(scenario) == 1


def test_slow_start_doubles_each_round_trip_while_latency_is_flat() -> None:
    clock = Clock()
    limiter = adaptive(clock)
    assert limiter.limit == INITIAL_LIMIT
    limits = []
    for _ in range(7):
        round_trip(limiter, clock, 0.020)
        limits.append(limiter.limit)
    assert limits == [16, 32, 64, 128, 256, 256, 256]
    assert MAX_LIMIT == 256


def test_rising_latency_ends_slow_start_and_shrinks_but_not_below_the_floor() -> None:
    clock = Clock()
    limiter = adaptive(clock)
    for _ in range(3):
        round_trip(limiter, clock, 0.020)
    assert limiter.limit == 64
    limits = []
    for _ in range(8):
        round_trip(limiter, clock, 0.060)  # three times slower: a queue is building
        limits.append(limiter.limit)
    # Growth goes on until the round trip is judged (as TCP's slow start overshoots), then
    # it only shrinks.
    assert 64 < limits[0] <= 128
    assert all(later <= earlier for earlier, later in itertools.pairwise(limits))
    assert limits[-1] == LATENCY_FLOOR
    # Flat again: grows additively now (slow start is over), not by doubling.
    round_trip(limiter, clock, 0.020)
    round_trip(limiter, clock, 0.020)
    assert LATENCY_FLOOR < limiter.limit < 2 * LATENCY_FLOOR


def test_failures_halve_the_limit_once_per_round_trip() -> None:
    clock = Clock()
    limiter = adaptive(clock)
    for _ in range(3):
        round_trip(limiter, clock, 0.020)
    assert limiter.limit == 64
    round_trip(limiter, clock, 0.020, congested=True)  # 64 failures, one verdict
    assert limiter.limit == 32
    round_trip(limiter, clock, 0.020, congested=True)
    assert limiter.limit == 16
    for _ in range(3):
        round_trip(limiter, clock, 5.0, congested=True)
    assert limiter.limit == 2  # failures may go below the latency floor


def test_a_second_long_stall_halves_the_limit_but_jitter_does_not() -> None:
    clock = Clock()
    limiter = adaptive(clock)
    for _ in range(4):
        round_trip(limiter, clock, 0.010)
    assert limiter.limit == 128

    async def one() -> Ticket:
        return await limiter.acquire()

    jitter = run(one)
    clock.now += 0.030  # 3x the usual: scheduling noise, not a dropped connection
    limiter.release(jitter)
    assert limiter.limit >= 128
    before = limiter.limit
    stalled = run(one)
    clock.now += 1.0  # a dropped connection attempt, retried a second later
    limiter.release(stalled)
    assert limiter.limit == before // 2


def test_cap_lowers_an_adaptive_ceiling_but_not_a_fixed_choice() -> None:
    clock = Clock()
    limiter = adaptive(clock)
    limiter.cap(CLOSE_LIMIT)
    assert (limiter.limit, limiter.maximum) == (CLOSE_LIMIT, CLOSE_LIMIT)
    for _ in range(5):
        round_trip(limiter, clock, 0.001)
    assert limiter.limit == CLOSE_LIMIT
    fixed = FixedLimiter(64)
    fixed.cap(CLOSE_LIMIT)
    assert fixed.limit == 64


def test_stats_report_the_mean_number_in_flight() -> None:
    clock = Clock()
    limiter = FixedLimiter(4, clock=clock)

    async def scenario() -> None:
        a, b = await limiter.acquire(), await limiter.acquire()
        clock.now = 1.0
        limiter.release(a)
        clock.now = 3.0
        limiter.release(b)

    run(scenario)
    stats = limiter.stats()
    assert (stats.requests, stats.peak_limit, stats.seconds) == (2, 4, 3.0)
    assert stats.mean_in_flight == pytest.approx((2 * 1.0 + 1 * 2.0) / 3.0)
    assert limiter.describe() == (
        "2 instance requests in 3.00s, concurrency fixed: limit peak 4, final 4, mean in flight 1.3"
    )


def limiter_line(stderr: str) -> tuple[str, int, float]:
    found = re.search(
        r"concurrency (\w+): limit peak (\d+), final \d+, mean in flight ([\d.]+)", stderr
    )
    assert found, stderr[-2000:]
    return found.group(1), int(found.group(2)), float(found.group(3))


def test_reference_like_server_is_read_with_at_most_a_few_connections_at_once(cli):
    with ReferenceServer("127.0.0.1", 0) as server:
        result = cli("--debug", "--cp-url", server.url, "services", "-o", "json")
    assert result.exit_code == 0, result.stderr[-2000:]
    records = json.loads(result.stdout)
    assert len(records) == 150
    assert all(record["error"] is None for record in records)
    assert f"the server closes every connection: at most {CLOSE_LIMIT} requests at once" in (
        result.stderr
    )
    mode, peak, _ = limiter_line(result.stderr)
    assert (mode, peak) == ("adaptive", CLOSE_LIMIT)


def test_keep_alive_connections_are_reused() -> None:
    fleet = Fleet.generate(400, seed=3)
    with SimulatorServer(fleet, "127.0.0.1", 0, latency_ms=2) as server:
        lines: list[str] = []
        settings = ClientSettings(base_url=server.url, log=lines.append)

        async def snapshot() -> int:
            async with CpxClient(settings) as client:
                return len((await client.snapshot()).instances)

        assert run(snapshot) == 400
    _, peak, _ = limiter_line("\n".join(lines))
    assert not any("closes every connection" in line for line in lines)
    assert server.request_paths["/servers"] == 1
    # A connection goes back to the pool a moment after its request's slot is given to the
    # next one, so on a loaded machine a few more may be opened than were ever in flight.
    assert server.connections_opened <= 2 * peak < 400, (server.connections_opened, peak)


def test_fixed_concurrency_is_kept_and_reported(cli, sim):
    result = cli("--debug", "--concurrency", "3", "--cp-url", sim.url, "services", "-o", "json")
    assert result.exit_code == 0
    mode, peak, mean = limiter_line(result.stderr)
    assert (mode, peak) == ("fixed", 3)
    assert 0 < mean <= 3


def test_a_snapshot_holds_one_task_per_request_in_flight_not_one_per_instance() -> None:
    fleet = Fleet.generate(300, seed=5)
    with SimulatorServer(fleet, "127.0.0.1", 0, latency_ms=1) as server:
        settings = ClientSettings(base_url=server.url, concurrency=4)

        async def snapshot() -> tuple[int, int]:
            most = 0
            done = False

            async def watch() -> None:
                nonlocal most
                while not done:
                    most = max(most, len(asyncio.all_tasks()))
                    await asyncio.sleep(0)

            watcher = asyncio.ensure_future(watch())
            async with CpxClient(settings) as client:
                count = len((await client.snapshot()).instances)
            done = True
            await watcher
            return count, most

        count, most = run(snapshot)
    assert count == 300
    assert 4 < most <= 4 + 2  # the requests, this coroutine and the watcher
