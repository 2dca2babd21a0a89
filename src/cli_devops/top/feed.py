"""The threads that feed the console: polling a `FleetSource`, or playing a recording back.

Reading the fleet (HTTP, parsing) and rebuilding the `Frame` happen here, never on the UI's
event loop, so a key press is answered while a poll of a large fleet is in flight. A feed hands
each new frame to `deliver`, which must be safe to call from another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import statistics
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from cli_devops.errors import ApiUnreachable
from cli_devops.polling import Ticker
from cli_devops.sources.base import FleetSource
from cli_devops.top.recording import Recorder, Recording
from cli_devops.top.source import FleetReading
from cli_devops.top.state import FleetState, Frame, Replay

Deliver = Callable[[Frame], None]
Crashed = Callable[[BaseException], None]
MAX_GAP = 60.0
"""A replay waits at most this long (before --speed) between two recorded polls."""
STOP_WAIT = 0.8
"""How long stopping waits for the thread (a poll in flight is cancelled)."""


class LiveFeed:
    """Polls `source` every `interval` seconds on a fixed grid (the poll's own time is taken out
    of the wait), records each poll if asked, and delivers a frame after each. The source is
    opened on the feed's own loop at the first poll and closed when the feed stops; a source
    that keeps history first fills the sparklines' window from it."""

    def __init__(  # noqa: PLR0913 -- what a feed is made of, all required
        self,
        source: FleetSource,
        state: FleetState,
        deliver: Deliver,
        crashed: Crashed,
        *,
        interval: float,
        monotonic: Callable[[], float],
        now: Callable[[], datetime],
        recorder: Recorder | None = None,
    ) -> None:
        self.source = source
        self.now = now
        self._open = False
        self.state = state
        self.deliver = deliver
        self.crashed = crashed
        self.interval = interval
        self.monotonic = monotonic
        self.recorder = recorder
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        """The poll (or the read of the past) in flight, which `stop` cancels."""
        self._thread = threading.Thread(target=self._run, name="top-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poll_now(self) -> None:
        self._wake.set()

    def pause(self, paused: bool) -> None:
        """Polls go on while the view is paused."""

    def step(self, offset: int) -> None:
        """Live polls cannot be stepped through."""

    def stop(self) -> None:
        """Stop polling, cancelling a poll in flight, and close the source."""
        self._stopping.set()
        self._wake.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._poll_loop(loop)
        except BaseException as err:  # handed to the console, which exits with it
            self.crashed(err)
        finally:
            try:
                if self._open:
                    self._open = False
                    loop.run_until_complete(self.source.__aexit__(None, None, None))
            finally:
                self._loop = None
                loop.close()

    def _poll_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._load_past(loop)
        ticker = Ticker(self.interval, self.monotonic)
        while not self._stopping.is_set():
            if self._wake.wait(ticker.delay()):
                self._wake.clear()
            if self._stopping.is_set():
                return
            self._task = loop.create_task(self._poll())
            try:
                reading: FleetReading = loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                return
            finally:
                self._task = None
            if self.recorder is not None:
                self.recorder.write(reading)
            self.state.apply(reading, self.monotonic())
            self.deliver(self.state.frame(self.monotonic()))

    async def _opened(self) -> FleetSource:
        if not self._open:
            await self.source.__aenter__()
            self._open = True
        return self.source

    async def _poll(self) -> FleetReading:
        """One poll; a fleet that cannot be read is a reading with its error (the console
        keeps the last data and marks it stale)."""
        source = await self._opened()
        moment = self.now()
        try:
            snapshot = await source.read()
        except ApiUnreachable as err:
            return FleetReading(moment, (), str(err.__cause__ or err))  # the header has the URL
        return FleetReading(moment, snapshot.instances)

    async def _past(self, samples: int) -> list[FleetReading]:
        """The `samples - 1` steps, `interval` apart, before now (the first poll is the last
        sample); none when the source cannot say (the console then starts empty)."""
        if samples < 2:
            return []
        source = await self._opened()
        end = self.now().timestamp() - self.interval
        start = end - (samples - 2) * self.interval
        try:
            steps = await source.history(None, start, end, self.interval)
        except ApiUnreachable:
            return []
        return [
            FleetReading(datetime.fromtimestamp(at, timezone.utc), instances)
            for at, instances in steps
        ]

    def _load_past(self, loop: asyncio.AbstractEventLoop) -> None:
        """From a source that keeps history (Prometheus), the window of the sparklines before
        the first poll."""
        if not self.source.keeps_history:
            return
        task: asyncio.Task[list[FleetReading]] = loop.create_task(
            self._past(self.state.track.history)
        )
        self._task = task
        try:
            readings = loop.run_until_complete(task)
        except asyncio.CancelledError:
            return
        finally:
            self._task = None
        if not readings:
            return
        clock, now = self.monotonic(), readings[-1].time.timestamp() + self.interval
        for reading in readings:
            self.state.apply(reading, clock - (now - reading.time.timestamp()), past=True)


class ReplayFeed:
    """Plays a recording at `speed` times the recorded pace, from its first poll to its last.

    While paused it steps one poll forwards or back on request. Ages shown are the recording's
    own (the time of the poll shown, not the time now).
    """

    def __init__(
        self,
        recording: Recording,
        make_state: Callable[[], FleetState],
        deliver: Deliver,
        crashed: Crashed,
        *,
        speed: float = 1.0,
    ) -> None:
        self.readings = recording.readings
        self.skipped = recording.skipped
        self.make_state = make_state
        self.deliver = deliver
        self.crashed = crashed
        self.speed = speed
        self.paused = False
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="top-replay", daemon=True)

    @staticmethod
    def interval_of(recording: Recording) -> float:
        """The recording's typical spacing between polls (for forecasts and the header)."""
        times = [reading.time.timestamp() for reading in recording.readings]
        gaps = [later - earlier for earlier, later in zip(times, times[1:]) if later > earlier]
        return statistics.median(gaps) if gaps else 1.0

    def start(self) -> None:
        self._thread.start()

    def pause(self, paused: bool) -> None:
        self._commands.put(("pause", paused))

    def step(self, offset: int) -> None:
        """One poll on (1) or back (-1); only while paused."""
        self._commands.put(("step", offset))

    def poll_now(self) -> None:
        """Nothing to poll in a replay."""

    def stop(self) -> None:
        self._commands.put(("stop", None))
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT)

    def _run(self) -> None:
        try:
            self._play()
        except BaseException as err:  # handed to the console, which exits with it
            self.crashed(err)

    def _play(self) -> None:
        state = self.make_state()
        position = 0
        if self.readings:
            self._apply(state, 0)
        self._show(state, position)
        while True:
            last = len(self.readings) - 1
            timeout = None if self.paused or position >= last else self._gap(position)
            try:
                command, value = self._commands.get(timeout=timeout)
            except queue.Empty:
                position += 1
                self._apply(state, position)
                self._show(state, position)
                continue
            if command == "stop":
                return
            if command == "pause":
                self.paused = bool(value)
            elif command == "step" and self.paused:
                target = min(max(position + int(value), 0), max(last, 0))
                if target == position + 1:
                    self._apply(state, target)
                elif target < position:
                    state = self._rebuild(target)
                position = target
            self._show(state, position)

    def _gap(self, position: int) -> float:
        earlier = self.readings[position].time.timestamp()
        later = self.readings[position + 1].time.timestamp()
        return min(max(later - earlier, 0.0), MAX_GAP) / self.speed

    def _apply(self, state: FleetState, position: int) -> None:
        state.apply(self.readings[position], self.readings[position].time.timestamp())

    def _rebuild(self, position: int) -> FleetState:
        """The state as of `position`, replayed from the start (min/avg/max cover it all)."""
        state = self.make_state()
        for index in range(position + 1):
            self._apply(state, index)
        return state

    def _show(self, state: FleetState, position: int) -> None:
        clock = self.readings[position].time.timestamp() if self.readings else 0.0
        replay = Replay(
            position=position + 1 if self.readings else 0,
            total=len(self.readings),
            speed=self.speed,
            paused=self.paused,
            skipped=self.skipped,
        )
        self.deliver(state.frame(clock, replay))
