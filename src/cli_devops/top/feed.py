"""The threads that feed the console: polling a `FleetSource`, or playing a recording back.

Reading the fleet (HTTP, parsing) and rebuilding the `Frame` happen here, never on the UI's
event loop, so a key press is answered while a poll of a large fleet is in flight. A feed hands
each new frame to `deliver`, which must be safe to call from another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

from cli_devops.polling import Ticker
from cli_devops.top.recording import Recorder, Recording
from cli_devops.top.source import FleetReading, SourcePolls
from cli_devops.top.state import FleetState, Frame, Replay
from cli_devops.top.travel import KeptPolls, describe, index_at, pick

Deliver = Callable[[Frame], None]
Crashed = Callable[[BaseException], None]
T = TypeVar("T")
MAX_GAP = 60.0
"""A replay waits at most this long (before --speed) between two recorded polls."""
STOP_WAIT = 0.8
"""How long stopping waits for the thread (a poll in flight is cancelled)."""


class LiveFeed:
    """Polls `source` every `interval` seconds on a fixed grid (the poll's own time is taken out
    of the wait), records each poll if asked, and delivers a frame after each.

    Recent polls are kept (`travel.KeptPolls`) so the view can travel back: while it shows a
    past sample, polls go on and are kept, and no live frame is delivered until `live()`. A
    source that keeps history itself (`window(end, samples, interval)`, Prometheus) is asked
    for the past instead, at any moment it holds.
    """

    def __init__(  # noqa: PLR0913 -- what a feed is made of, all required
        self,
        source: SourcePolls,
        state: FleetState,
        deliver: Deliver,
        crashed: Crashed,
        *,
        interval: float,
        monotonic: Callable[[], float],
        recorder: Recorder | None = None,
        say: Callable[[str], None] = lambda message: None,
        start_at: datetime | None = None,
    ) -> None:
        self.source = source
        self.state = state
        self.deliver = deliver
        self.crashed = crashed
        self.interval = interval
        self.monotonic = monotonic
        self.recorder = recorder
        self.say = say
        self.kept = KeptPolls()
        self.at: float | None = None
        """The moment on screen while travelling (None: live)."""
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        if start_at is not None:
            self._commands.put(("jump", start_at))
        self._poll_asked = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        """The poll (or the read of the past) in flight, which `stop` cancels."""
        self._thread = threading.Thread(target=self._run, name="top-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poll_now(self) -> None:
        self._poll_asked = True
        self._wake.set()

    def pause(self, paused: bool) -> None:
        """Polls go on while the view is paused."""

    def step(self, offset: int) -> None:
        """Live polls are stepped through with `travel`."""

    def travel(self, offset: int) -> None:
        """`offset` samples on (1) or back (-1) from the one on screen; on past the newest is
        live again."""
        self._command("travel", offset)

    def jump(self, moment: datetime) -> None:
        """To the latest sample at or before `moment`."""
        self._command("jump", moment)

    def live(self) -> None:
        self._command("live", None)

    def _command(self, name: str, value: Any) -> None:
        self._commands.put((name, value))
        self._wake.set()

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
                loop.run_until_complete(self.source.aclose())
            finally:
                self._loop = None
                loop.close()

    def _poll_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._load_past(loop)
        ticker = Ticker(self.interval, self.monotonic)
        while not self._stopping.is_set():
            if not self._wait(loop, self.monotonic() + ticker.delay()):
                return
            reading = self._await(loop, self.source.poll())
            if reading is None:
                return
            if self.recorder is not None:
                self.recorder.write(reading)
            self.kept.add(reading)
            self.state.apply(reading, self.monotonic())
            if self.at is None:
                self.deliver(self.state.frame(self.monotonic()))

    def _wait(self, loop: asyncio.AbstractEventLoop, due: float) -> bool:
        """Until the poll is due (or asked for), carrying out travel commands meanwhile; False
        when stopped."""
        while True:
            while not self._commands.empty():
                if not self._travel(loop):
                    return False
            woke = self._wake.wait(max(0.0, due - self.monotonic()))
            self._wake.clear()
            if self._stopping.is_set():
                return False
            if not woke or self._poll_asked:
                self._poll_asked = False
                return True

    def _await(self, loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T | None:
        """`work` run on the feed's loop, cancellable by `stop`; None when it was cancelled."""
        task = loop.create_task(work)
        self._task = task
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            return None
        finally:
            self._task = None

    def _travel(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Carry out one travel command; False when stopped meanwhile."""
        name, value = self._commands.get()
        if name == "live" or (name == "travel" and self.at is None and value > 0):
            return self._go_live()
        if self.source.keeps_history:
            return self._travel_remote(loop, name, value)
        times = self.kept.times
        found = pick(times, self.at, name, value, self.say)
        if found is None:
            return True
        if found >= len(times):
            return self._go_live()
        first = max(0, found - self.state.track.history + 1)
        return self._show_past(
            [self.kept.reading(i) for i in range(first, found + 1)], times[found]
        )

    def _travel_remote(self, loop: asyncio.AbstractEventLoop, name: str, value: Any) -> bool:
        now = time.time()
        base = self.at if self.at is not None else now
        target = value.timestamp() if name == "jump" else base + int(value) * self.interval
        if target >= now:
            if name == "jump":
                self.say(f"{describe(target)} is in the future; showing the fleet live")
            return self._go_live()
        window = self.source.window(target, self.state.track.history, self.interval)
        readings = self._await(loop, window)
        if readings is None:
            return False
        return self._show_past(readings, target)

    def _go_live(self) -> bool:
        self.at = None
        self.deliver(self.state.frame(self.monotonic()))
        return True

    def _show_past(self, readings: list[FleetReading], at: float) -> bool:
        self.at = at
        state = self.state.empty()
        for reading in readings:
            state.apply(reading, reading.time.timestamp())
        self.deliver(state.frame(at, historic=True))
        return True

    def _load_past(self, loop: asyncio.AbstractEventLoop) -> None:
        """From a source that keeps history (Prometheus), the window of the sparklines before
        the first poll."""
        if not self.source.keeps_history or not self._commands.empty():  # opening in the past
            return
        readings = self._await(loop, self.source.past(self.state.track.history, self.interval))
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

    def __init__(  # noqa: PLR0913 -- what a feed is made of
        self,
        recording: Recording,
        make_state: Callable[[], FleetState],
        deliver: Deliver,
        crashed: Crashed,
        *,
        speed: float = 1.0,
        say: Callable[[str], None] = lambda message: None,
        start_at: datetime | None = None,
    ) -> None:
        self.readings = recording.readings
        self.times = [reading.time.timestamp() for reading in recording.readings]
        self.say = say
        self.skipped = recording.skipped
        self.make_state = make_state
        self.deliver = deliver
        self.crashed = crashed
        self.speed = speed
        self.paused = False
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        if start_at is not None:
            self.paused = True
            self._commands.put(("jump", start_at))
        self._thread = threading.Thread(target=self._run, name="top-replay", daemon=True)

    @staticmethod
    def interval_of(recording: Recording) -> float:
        """The recording's typical spacing between polls (for forecasts and the header)."""
        times = [reading.time.timestamp() for reading in recording.readings]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times) if later > earlier]
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

    def travel(self, offset: int) -> None:
        """Pause, then `offset` polls on or back."""
        self._commands.put(("pause", True))
        self._commands.put(("step", offset))

    def jump(self, moment: datetime) -> None:
        """Pause at the latest poll at or before `moment`."""
        self._commands.put(("jump", moment))

    def live(self) -> None:
        """A recording has no live end: play on from the poll on screen."""
        self._commands.put(("pause", False))

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
                state = self._moved(state, position, target)
                position = target
            elif command == "jump":
                self.paused = True
                found = index_at(self.times, value.timestamp())
                if found is None:
                    self._not_found(value)
                else:
                    state = self._moved(state, position, found)
                    position = found
            self._show(state, position)

    def _moved(self, state: FleetState, position: int, target: int) -> FleetState:
        if target == position + 1:
            self._apply(state, target)
            return state
        if target == position:
            return state
        return self._rebuild(target)

    def _not_found(self, moment: datetime) -> None:
        if self.times:
            self.say(f"no poll at or before {describe(moment.timestamp())}; the recording "
                     f"starts at {describe(min(self.times))}")  # fmt: skip
        else:
            self.say("the recording holds no poll")

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
        self.deliver(state.frame(clock, replay, historic=True))
