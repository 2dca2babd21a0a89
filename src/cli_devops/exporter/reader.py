"""The exporter's reads of CPX: one asyncio loop thread with one open `FleetSource`.

Every scrape is answered within its own deadline, and no scrape can make another slower or
emptier:

* A scrape joins a read already in flight only when that read was given at least the same
  budget (seconds) and ends no later than the scrape's own deadline: then it gets an answer as
  complete as its own read would have been, sooner. Prometheus HA pairs and retries sending
  the same timeout thus share one read of CPX.
* Otherwise the scrape starts its own read with its own deadline. A scrape with a tiny timeout
  cannot hand its cut-short read to others, and one with a huge timeout cannot keep others
  waiting for it.
* All reads share the client's concurrency limiter, which bounds what they ask of CPX together;
  requests cut by a deadline or timing out do not teach the limiter a lower limit, so the
  limit learned across scrapes does not collapse.
* `--deadline` caps every scrape's budget.
* The answer's size grows with the instances read, and so does the time to build, encode and
  send it: each instance read brings the read's deadline earlier by what an instance's share of
  the answer took in recent scrapes (`answer_cost`), so a large fleet's scrape stops reading in
  time to be answered within its timeout.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from dataclasses import dataclass

from cli_devops.client import ClientSettings
from cli_devops.errors import ApiUnreachable
from cli_devops.exporter.collector import Shard, ShardReading
from cli_devops.exporter.events import EventLog
from cli_devops.sources.base import FleetSource

JOIN_SLACK = 0.05
"""Seconds by which a read in flight may end after a scrape's deadline and still be joined
(scheduling noise)."""


ANSWER_COST = 50e-6
"""Seconds per instance read that the answer is first assumed to take to build, encode and send
(about twice what a quiet 2-core machine takes); each scrape then measures its own."""
ANSWER_COST_MAX = 0.01


class ExporterStopping(Exception):
    """The exporter is shutting down: the scrape is abandoned, not answered."""


@dataclass
class _Read:
    task: asyncio.Task[ShardReading]
    budget: float
    ends: float


class FleetReader:
    """One asyncio loop thread with `source` open; `read()` is callable from any thread.
    `settings` gives the `--deadline` that caps every scrape and the debug log."""

    def __init__(
        self,
        settings: ClientSettings,
        source: FleetSource,
        shard: Shard | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.shard = shard or Shard()
        self.events = events or EventLog(None)
        self.reads_started = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._open = False
        self._reads: list[_Read] = []
        self._scrapes: set[asyncio.Task[ShardReading]] = set()
        self._waiting = 0
        self._stopping = False
        self.answer_cost = ANSWER_COST
        """Seconds per instance read that an answer takes, learned from the last scrapes."""

    def learn_answer_cost(self, instances: int, seconds: float) -> None:
        """Record that an answer of `instances` instances took `seconds` after its read ended.

        The estimate follows a slower answer at once and a faster one by halves, so one quick
        scrape on an idle machine does not leave the next, busier one short of time."""
        if instances < 1000 or not 0 <= seconds < 3600:  # too few to tell the cost per instance
            return
        measured = min(seconds / instances, ANSWER_COST_MAX)
        self.answer_cost = max(measured, (self.answer_cost + measured) / 2)

    @property
    def waiting(self) -> int:
        """Scrapes currently waiting for a read (their own or one they joined)."""
        return self._waiting

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="cpx-exporter-client", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        asyncio.run_coroutine_threadsafe(self.source.__aenter__(), loop).result()
        self._open = True

    def stop(self) -> None:
        """Abandon the scrapes in flight, close the client and the loop. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._stopping = True
        asyncio.run_coroutine_threadsafe(self._close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = None

    def read(self, deadline: float) -> ShardReading:
        """Read this shard of the fleet within `deadline` seconds (blocking). Raises
        ExporterStopping when the exporter stops meanwhile."""
        loop = self._loop
        if loop is None or self._stopping:
            raise ExporterStopping
        future = asyncio.run_coroutine_threadsafe(self._scrape(deadline), loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ExporterStopping from None

    async def _close(self) -> None:
        for read in self._reads:
            read.task.cancel()
        for scrape in list(self._scrapes):
            scrape.cancel()
        pending = [read.task for read in self._reads] + list(self._scrapes)
        if pending:
            await asyncio.wait(pending)
        if self._open:
            self._open = False
            await self.source.__aexit__(None, None, None)

    async def _scrape(self, deadline: float) -> ShardReading:
        if self.settings.deadline is not None:
            deadline = min(deadline, self.settings.deadline)
        task = asyncio.current_task()
        assert task is not None
        self._scrapes.add(task)
        self._waiting += 1
        try:
            return await self._answer(deadline)
        except asyncio.CancelledError:
            if self._stopping:
                raise ExporterStopping from None
            raise
        finally:
            self._waiting -= 1
            self._scrapes.discard(task)

    async def _answer(self, deadline: float) -> ShardReading:
        loop = asyncio.get_running_loop()
        ends = loop.time() + deadline
        fitting = [
            read
            for read in self._reads
            if read.budget >= deadline and read.ends <= ends + JOIN_SLACK
        ]
        if fitting:
            joined = min(fitting, key=lambda read: read.ends)
            return await asyncio.shield(joined.task)
        self.reads_started += 1
        read = _Read(asyncio.ensure_future(self._read(deadline)), deadline, ends)
        self._reads.append(read)
        read.task.add_done_callback(lambda _: self._reads.remove(read))
        return await asyncio.shield(read.task)

    async def _read(self, deadline: float) -> ShardReading:
        assert self._open, "FleetReader used before start()"
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            snapshot = await self.source.read(
                deadline, owns=self.shard.owns, answer_cost=self.answer_cost
            )
        except ApiUnreachable as err:
            self.events.warn("CPX read failed", cpx_up=0, cause=str(err))
            return ShardReading(False, [], loop.time() - started, str(err))
        owned = len(snapshot.instances)
        requested = snapshot.instances[: owned - snapshot.unrequested]
        causes = collections.Counter(
            instance.error for instance in requested if instance.error is not None
        )
        if snapshot.unrequested:
            causes["not requested within the scrape's deadline"] += snapshot.unrequested
        if causes:
            cause, count = causes.most_common(1)[0]
            self.events.warn(
                "instances not read", unread=sum(causes.values()), instances=owned,
                cause=cause, cause_count=count, causes=len(causes),
            )  # fmt: skip
        return ShardReading(True, requested, loop.time() - started, None, snapshot.unrequested)
