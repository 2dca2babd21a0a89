"""Where events go besides stdout: a command per event, a webhook, Alertmanager.

Every delivery runs as its own task, so a slow or failing receiver never holds up the polls:
commands run a few at a time, each bounded in time; POSTs are retried briefly (`posting`);
at most `MAX_PENDING` deliveries wait at once, and beyond that an event's deliveries are
dropped and reported. A failure is one line on stderr. At the end, deliveries in flight get
a bounded time to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cli_devops.environment import Environment
from cli_devops.text import plural
from cli_devops.watch.events import Event

if TYPE_CHECKING:
    from cli_devops.watch.alertmanager import Alertmanager
    from cli_devops.watch.posting import Poster
    from cli_devops.watch.webhook import Webhook

COMMANDS_AT_ONCE = 4
POSTS_AT_ONCE = 8
COMMAND_TIMEOUT = 30.0
MAX_PENDING = 1024
DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class Receivers:
    """What to deliver events to, besides stdout."""

    command: Sequence[str] | None = None
    webhook: Webhook | None = None
    alertmanager: Alertmanager | None = None
    command_timeout: float = COMMAND_TIMEOUT
    proxies: Mapping[str, str] = field(default_factory=dict)
    """Proxies for the POSTs, as for the fleet's reads (from the environment)."""


@dataclass
class DeliveryCounts:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    cut_short: int = 0
    failures: list[str] = field(default_factory=list)


class Deliveries:
    """The deliveries of one watch; `async with`, then `event()` per event, `tick()` per poll."""

    def __init__(self, env: Environment, receivers: Receivers) -> None:
        self.env = env
        self.receivers = receivers
        self.counts = DeliveryCounts()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._post_slots: asyncio.Semaphore | None = None
        self._poster: Poster | None = None
        self._dropped_now = 0

    async def __aenter__(self) -> Deliveries:
        self._slots = asyncio.Semaphore(COMMANDS_AT_ONCE)
        self._post_slots = asyncio.Semaphore(POSTS_AT_ONCE)
        if self.receivers.webhook is not None or self.receivers.alertmanager is not None:
            from cli_devops.watch.posting import Poster

            self._poster = await Poster(self.receivers.proxies).__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(DRAIN_SECONDS)

    async def close(self, bound: float) -> None:
        """Let deliveries in flight finish for up to `bound` seconds, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=bound)
            for task in pending:
                task.cancel()
            if pending:
                self.counts.cut_short += len(pending)
                await asyncio.wait(pending)
        if self._poster is not None:
            await self._poster.__aexit__(None, None, None)
            self._poster = None

    def event(self, event: Event) -> None:
        receivers = self.receivers
        if receivers.command:
            self._spawn(self._run_command(receivers.command, event))
        if receivers.webhook is not None:
            self._spawn(self._post("webhook", receivers.webhook.send(self._need_poster(), event),
                                   event))  # fmt: skip
        if receivers.alertmanager is not None:
            sent = receivers.alertmanager.send(self._need_poster(), [event], event.time)
            self._spawn(self._post("Alertmanager", sent, event))

    def tick(self, firing: Sequence[Event], now: datetime, clock: float) -> None:
        """After a poll's events: report what was dropped, and re-send the firing alerts when
        a minute has passed since the last time."""
        if self._dropped_now:
            self.env.warn(
                f"{MAX_PENDING} deliveries were pending; "
                f"{plural(self._dropped_now, 'delivery', 'deliveries')} dropped"
            )
            self._dropped_now = 0
        manager = self.receivers.alertmanager
        if manager is not None and manager.due(clock):
            sent = manager.send(self._need_poster(), firing, now, clock)
            self._spawn(self._post("Alertmanager", sent, None, count=len(firing)))

    def _need_poster(self) -> Poster:
        assert self._poster is not None
        return self._poster

    def _spawn(self, work: Awaitable[None]) -> None:
        if len(self._tasks) >= MAX_PENDING:
            self.counts.dropped += 1
            self._dropped_now += 1
            if asyncio.iscoroutine(work):
                work.close()
            return
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(
        self, receiver: str, sending: Awaitable[str | None], event: Event | None, count: int = 1
    ) -> None:
        assert self._post_slots is not None
        async with self._post_slots:
            reason = await sending
        if reason is None:
            self.counts.delivered += count
            return
        what = f"{event.kind} of {event.subject()}" if event else plural(count, "firing alert")
        self._fail(f"{receiver}: could not deliver {what}: {reason}")

    async def _run_command(self, command: Sequence[str], event: Event) -> None:
        assert self._slots is not None
        what = f"{event.kind} of {event.subject()}"
        async with self._slots:
            try:
                process = await asyncio.create_subprocess_exec(
                    *command, stdin=subprocess.PIPE, stdout=self._command_output(),
                    stderr=self._command_output(),
                )  # fmt: skip
            except OSError as err:
                self._fail(f"event command could not start for {what}: {err.strerror or err}")
                return
            try:
                await asyncio.wait_for(
                    process.communicate(event.to_json().encode() + b"\n"),
                    self.receivers.command_timeout,
                )
            except TimeoutError:
                _kill(process)
                await process.wait()
                limit = f"{self.receivers.command_timeout:g}s"
                self._fail(f"event command took longer than {limit} for {what}; killed it")
                return
            except asyncio.CancelledError:
                _kill(process)
                await process.wait()  # reaped before the loop closes, not left to its watcher
                raise
        if process.returncode:
            self._fail(f"event command exited with status {process.returncode} for {what}")
        else:
            self.counts.delivered += 1

    def _command_output(self) -> int:
        """A command's output goes to our stderr: stdout carries only the events."""
        try:
            return self.env.stderr.fileno()
        except (OSError, ValueError, AttributeError):
            return subprocess.DEVNULL

    def _fail(self, line: str) -> None:
        self.counts.failed += 1
        self.env.warn(line)


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
