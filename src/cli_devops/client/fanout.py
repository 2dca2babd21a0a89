"""The fan-out: every instance of the listing read through the concurrency limiter.

A task is started only once the limiter grants it a slot, so memory holds the results and at
most one task per request in flight, not one waiting task per instance. When the read's
deadline passes, no further request is started: the instances not yet requested are either
listed as unread with the deadline's reason (the commands show every instance) or only counted
(the exporter, whose answer must stay small and fast for a huge fleet).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from cli_devops.client.budget import ReadBudget
from cli_devops.client.concurrency import FixedLimiter, Ticket
from cli_devops.model import Instance, InstanceList


class FanoutResult(NamedTuple):
    """The instances read (in the order of the listing) and how many were never requested
    because the deadline came first (listed in `instances` too when asked)."""

    instances: InstanceList
    unrequested: int


async def acquire_within(limiter: FixedLimiter, budget: ReadBudget) -> Ticket | None:
    """A slot, or None when the read's deadline passes first (or has passed)."""
    remaining = budget.remaining()
    if remaining is not None and remaining <= 0:
        return None
    ticket = limiter.try_acquire()
    if ticket is not None:
        return ticket
    if remaining is None:
        return await limiter.acquire()
    try:
        ticket = await asyncio.wait_for(limiter.acquire(), remaining)
    except TimeoutError:
        return None
    if budget.expired():  # it came earlier while waiting (the exporter's answer cost)
        limiter.release(ticket, cut=True)
        return None
    return ticket


async def read_all(
    ips: Sequence[str],
    limiter: FixedLimiter,
    budget: ReadBudget,
    read_one: Callable[[str, Ticket], Awaitable[Instance]],
    *,
    list_unrequested: bool = True,
) -> FanoutResult:
    """Read every IP with `read_one(ip, ticket)`, which must release the ticket."""
    results: list[Instance] = []
    running: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []
    launched = 0

    progress = budget.progress

    async def read(ip: str, ticket: Ticket) -> None:
        instance = await read_one(ip, ticket)
        results.append(instance)
        progress.read += 1
        if instance.error is not None:
            progress.failed += 1

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            failures.append(error)

    try:
        for ip in ips:
            ticket = await acquire_within(limiter, budget)
            if ticket is None:
                break
            if failures:
                limiter.release(ticket, cut=True)
                break
            task = asyncio.ensure_future(read(ip, ticket))
            running.add(task)
            task.add_done_callback(finished)
            launched += 1
        while running:
            await asyncio.wait(list(running))
    finally:
        for task in list(running):
            task.cancel()
    if failures:
        raise failures[0]
    position = {ip: index for index, ip in enumerate(ips[:launched])}
    results.sort(key=lambda instance: position[instance.ip])
    unrequested = len(ips) - launched
    if unrequested and list_unrequested:
        # Listed as IPs: a million Instance objects would be most of the time a deadline leaves.
        return FanoutResult(InstanceList(results, ips[launched:], budget.reason()), unrequested)
    return FanoutResult(InstanceList(results), unrequested)
