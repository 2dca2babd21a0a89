"""`top --all-contexts`: every context of the config file on one screen.

Each context has its own source, its own `FleetState` and its own frame, rebuilt only when that
context's read comes back; the screen's frame joins the latest frame of each (a tuple per
context, so joining costs nothing next to a read). The reads run side by side on one asyncio
loop, off the UI's, at most `POOL` at once, each within its own deadline: a context that is
down or slow becomes one row that says so, and the others go on updating.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from cli_devops.polling import Ticker, age
from cli_devops.text import plural
from cli_devops.top.source import FleetReading, SourcePolls
from cli_devops.top.state import FleetState, Frame, ServiceRow, Totals, service_key
from cli_devops.top.travel import KEEP_SAMPLES, KeptPolls, describe, index_at

if TYPE_CHECKING:
    from cli_devops.run_config import RunConfig


class FrameSink(Protocol):
    """Where the feed hands its frames (`app.TopApp`), from its own thread."""

    def deliver(self, frame: Frame) -> None: ...
    def crashed(self, error: BaseException) -> None: ...
    def say(self, text: str) -> None: ...


POOL = 8
"""Contexts read at once; the others wait for a place."""
DEFAULT_DEADLINE = 30.0
"""A context's read without a deadline of its own is given up after this many seconds."""
STOP_WAIT = 0.8
DOWN, SLOW, WAITING = "Down", "Slow", "Waiting"


@dataclass
class ContextFeed:
    """One context: its source, what it remembers, its latest frame, its read in flight."""

    name: str
    source: SourcePolls
    state: FleetState
    deadline: float
    frame: Frame | None = None
    kept: KeptPolls = field(default_factory=KeptPolls, repr=False)
    """Its recent reads, to look back (time travel)."""
    reading_since: float | None = None
    """The clock when its read in flight started (None: no read in flight)."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def context_row(name: str, status: str, note: str) -> ServiceRow:
    return ServiceRow(
        service="",
        instances=0,
        healthy=0,
        unhealthy=0,
        unknown=0,
        outliers=0,
        cpu_avg=None,
        memory_avg=None,
        cpu_trend=(),
        memory_trend=(),
        status=status,
        context=name,
        note=note,
    )


def join(contexts: Sequence[ContextFeed], clock: float, interval: float) -> Frame:
    """The screen's frame: every context's services under its name, and one row for a context
    that is down, slow or not read yet."""
    services: list[ServiceRow] = []
    instances: dict[str, Any] = {}
    totals = Totals()
    moments: list[datetime] = []
    polls = 0
    first: Frame | None = None
    for context in contexts:
        frame = context.frame
        slow = context.reading_since is not None and clock - context.reading_since > interval
        if slow:
            waited = age(clock - (context.reading_since or clock))
            services.append(context_row(context.name, SLOW, f"no answer for {waited}"))
            continue
        if frame is None:
            services.append(context_row(context.name, WAITING, "the first read is in flight"))
            continue
        first = first or frame
        polls += frame.polls  # the header counts the reads of every context
        if frame.error is not None:
            services.append(context_row(context.name, DOWN, frame.error))
            continue
        if frame.moment is not None:
            moments.append(frame.moment)
        services.extend(replace(row, context=context.name) for row in frame.services)
        for service, rows in frame.instances.items():
            instances[service_key(context.name, service)] = rows
        totals = _add(totals, frame.totals)
    base = first or contexts[0].state.frame(clock)
    return replace(
        base,
        source=f"{plural(len(contexts), 'context')}",
        clock=clock,
        polls=polls,
        failed=0,
        moment=max(moments) if moments else None,
        ok_poll=polls,
        ok_clock=clock,
        error=None,
        services=tuple(services),
        instances=instances,
        totals=totals,
        contexts=tuple(context.name for context in contexts),
    )


def past(contexts: Sequence[ContextFeed], at: float, interval: float) -> Frame:
    """Every context as its latest read at or before `at` showed it (its sparklines the reads
    up to it); a context with no read kept from then is one row saying so."""
    then: list[ContextFeed] = []
    for context in contexts:
        times = context.kept.times
        found = index_at(times, at)
        shown = ContextFeed(context.name, context.source, context.state.empty(), context.deadline)
        if found is None:
            shown.frame = None
        else:
            first = max(0, found - context.state.track.history + 1)
            for index in range(first, found + 1):
                reading = context.kept.reading(index)
                shown.state.apply(reading, reading.time.timestamp())
            shown.frame = shown.state.frame(times[found])
        then.append(shown)
    frame = join(then, at, interval)
    services = tuple(
        context_row(row.context or "", row.status, f"no read kept from {describe(at)}")
        if row.status == WAITING
        else row
        for row in frame.services
    )
    return replace(frame, services=services, historic=True)


def _add(left: Totals, right: Totals) -> Totals:
    return Totals(
        *(getattr(left, name) + getattr(right, name) for name in Totals.__dataclass_fields__)
    )


class ContextsFeed:
    """Reads every context every `interval` seconds (a context still reading is not asked
    again), and delivers the joined frame after each context's read and at each tick."""

    def __init__(  # noqa: PLR0913 -- what a feed is made of
        self,
        contexts: Sequence[ContextFeed],
        deliver: Callable[[Frame], None],
        crashed: Callable[[BaseException], None],
        *,
        interval: float,
        monotonic: Callable[[], float],
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.contexts = list(contexts)
        self.deliver = deliver
        self.crashed = crashed
        self.interval = interval
        self.monotonic = monotonic
        self.say = say
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.at: float | None = None
        """The moment on screen while travelling (None: live)."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="top-contexts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(main.cancel)
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT)

    def poll_now(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def pause(self, paused: bool) -> None:
        """Reads go on while the view is paused."""

    def step(self, offset: int) -> None:
        """Nothing to step through."""

    def travel(self, offset: int) -> None:
        """`offset` intervals on or back from the moment on screen; on past the newest read is
        live again."""
        self._command(self._travel, offset)

    def jump(self, moment: datetime) -> None:
        self._command(self._jump, moment.timestamp())

    def live(self) -> None:
        self._command(self._go_live, None)

    def _command(self, command: Callable[[Any], None], value: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(command, value)

    def _newest(self) -> float | None:
        times = [time for context in self.contexts for time in context.kept.times]
        return max(times) if times else None

    def _travel(self, offset: int) -> None:
        newest = self._newest()
        if newest is None:
            self.say("no sample yet")
            return
        if self.at is None and offset > 0:
            return
        target = (newest if self.at is None else self.at) + offset * self.interval
        if target > newest:
            self._go_live(None)
            return
        oldest = min(time for context in self.contexts for time in context.kept.times[:1])
        if target < oldest:
            self.say(f"that is the oldest sample kept (from {describe(oldest)})")
            target = oldest
        self._show(target)

    def _jump(self, at: float) -> None:
        newest = self._newest()
        if newest is None or at >= newest + self.interval:
            self.say(f"{describe(at)} is after the newest read; showing every context live")
            self._go_live(None)
            return
        self._show(at)

    def _show(self, at: float) -> None:
        self.at = at
        self.deliver(past(self.contexts, at, self.interval))

    def _go_live(self, _: object) -> None:
        self.at = None
        self.deliver(join(self.contexts, self.monotonic(), self.interval))

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            if not self._stopping.is_set():
                self._main = loop.create_task(self._read_all())
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(self._main)
        except BaseException as err:  # handed to the console, which exits with it
            self.crashed(err)
        finally:
            try:
                loop.run_until_complete(self._close())
            finally:
                self._loop = None
                loop.close()

    async def _read_all(self) -> None:
        self._wake = asyncio.Event()
        pool = asyncio.Semaphore(POOL)
        ticker = Ticker(self.interval, self.monotonic)
        while True:
            for context in self.contexts:
                if context.task is None or context.task.done():
                    context.task = asyncio.create_task(self._read(context, pool))
            delay = ticker.delay()
            if self.at is None:
                self.deliver(join(self.contexts, self.monotonic(), self.interval))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()

    async def _read(self, context: ContextFeed, pool: asyncio.Semaphore) -> None:
        async with pool:
            context.reading_since = self.monotonic()
            try:
                reading = await asyncio.wait_for(context.source.poll(), context.deadline)
            except TimeoutError:
                reading = FleetReading(
                    datetime.now(UTC), (), f"no answer within {context.deadline:g}s"
                )
            finally:
                context.reading_since = None
        context.kept.add(reading)
        context.state.apply(reading, self.monotonic())
        context.frame = context.state.frame(self.monotonic())
        if self.at is None:
            self.deliver(join(self.contexts, self.monotonic(), self.interval))

    async def _close(self) -> None:
        for context in self.contexts:
            if context.task is not None and not context.task.done():
                context.task.cancel()
                with contextlib.suppress(BaseException):
                    await context.task
            with contextlib.suppress(Exception):
                await context.source.aclose()


def contexts_feed(
    configs: Sequence[tuple[str, RunConfig]],
    console: FrameSink,
    *,
    interval: float,
    history: int,
    min_healthy: int,
) -> ContextsFeed:
    """The feed of every context in `configs`, each read from its Prometheus or CPX API."""
    from cli_devops.run_config import open_source

    contexts = []
    for name, config in configs:
        source = SourcePolls(open_source(config), config.env.now)
        state = FleetState(
            source.name,
            interval=interval,
            thresholds=config.thresholds,
            min_healthy=min_healthy,
            history=history,
        )
        deadline = config.settings.deadline or DEFAULT_DEADLINE
        kept = KeptPolls(samples=KEEP_SAMPLES // len(configs))  # the bound is for all of them
        contexts.append(ContextFeed(name, source, state, deadline, kept=kept))
    monotonic = configs[0][1].env.monotonic
    return ContextsFeed(
        contexts,
        console.deliver,
        console.crashed,
        interval=interval,
        monotonic=monotonic,
        say=console.say,
    )
