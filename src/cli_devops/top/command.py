"""`top`: the interactive fleet console, as a typed function like the other commands.

Textual is imported here, when the console starts, and nowhere else: no other command pays for
it.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cli_devops.errors import ExitStatus, UsageError
from cli_devops.files import OutputFile
from cli_devops.lifecycle import RAW_TERMINAL_SIGNALS, Stopped, stop_signals
from cli_devops.polling import rfc3339
from cli_devops.settings import DEFAULT_HISTORY, DEFAULT_MIN_HEALTHY, DEFAULT_TOP_INTERVAL
from cli_devops.top.recording import Recorder, Recording, bounded_lines, read_recording
from cli_devops.top.state import FleetState

if TYPE_CHECKING:
    from cli_devops.run_config import RunConfig
    from cli_devops.sources.base import FleetSource
    from cli_devops.top.app import Feed, TopApp

NOT_A_TERMINAL = (
    "top is an interactive console and needs a terminal; for scripts read the fleet with "
    "`services -o json` or `status -o json`, or one service over time with `track SERVICE -o json`"
)


STDERR_NOT_A_TERMINAL = (
    "top draws on the terminal through stderr, which is redirected; run it without redirecting "
    "stderr (its diagnostics, --debug lines included, are printed there when it closes)"
)


@dataclass(frozen=True)
class TopOptions:
    interval: float = DEFAULT_TOP_INTERVAL
    history: int = DEFAULT_HISTORY
    """Samples kept per instance and service (sparklines, forecasts)."""
    min_healthy: int = DEFAULT_MIN_HEALTHY
    record: str | None = None
    """Append every poll to this file."""
    replay: str | None = None
    """Play this recording back instead of polling."""
    speed: float = 1.0
    at: datetime | None = None
    """Open at this moment (of the recording, or of Prometheus's history)."""


def load_recording(path: str) -> Recording:
    try:
        # Non-blocking, so a FIFO cannot hang the start; only regular files are read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UsageError(f"cannot read the recording {path}: it is not a regular file")
            recording = read_recording(bounded_lines(stream))
    except OSError as err:
        raise UsageError(f"cannot read the recording {path}: {err.strerror or err}") from None
    if recording.skipped and not recording.readings:
        raise UsageError(f"{path} is not a recording of top: none of its lines is a recorded poll")
    return recording


def check_moment(recording: Recording, moment: datetime) -> None:
    """UsageError when the recording holds no poll at or before `moment`."""
    from cli_devops.top.travel import index_at

    times = [reading.time.timestamp() for reading in recording.readings]
    if index_at(times, moment.timestamp()) is None:
        if not times:
            raise UsageError("the recording holds no poll to open at that time")
        first = min(recording.readings, key=lambda reading: reading.time).time
        raise UsageError(f"the recording starts at {rfc3339(first)}, after {rfc3339(moment)}")


def open_recorder(path: str) -> Recorder:
    """The recording's writer (`files.OutputFile`): a failed open or write is CannotWrite."""
    return Recorder(OutputFile(path, what="recording", dash_is_stdout=False))


@dataclass
class Session:
    """A console ready to run, with what it must close or say when it ends."""

    console: TopApp
    recording: Recording | None = None
    recorder: Recorder | None = None

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


def prepare(
    app: RunConfig,
    options: TopOptions,
    source: FleetSource | None = None,
    contexts: Sequence[tuple[str, RunConfig]] = (),
) -> Session:
    """The console for `options`, not yet started: `source` defaults to the Prometheus or the
    CPX API of `app`; with `options.replay` no source is polled at all; with `contexts`, every
    one of them is read instead (`--all-contexts`)."""
    from cli_devops.run_config import open_source
    from cli_devops.top.app import TopApp
    from cli_devops.top.feed import LiveFeed, ReplayFeed
    from cli_devops.top.source import SourcePolls

    env = app.env
    recording: Recording | None = None
    recorder: Recorder | None = None
    if options.replay is not None:
        recording = load_recording(options.replay)
        if options.at is not None:
            check_moment(recording, options.at)
        interval = ReplayFeed.interval_of(recording)
        name = f"replay of {Path(options.replay).name}"
    else:
        source = source or open_source(app)
        interval = options.interval
        name = source.name
        if options.record is not None:
            recorder = open_recorder(options.record)

    def make_state() -> FleetState:
        return FleetState(
            name,
            interval=interval,
            thresholds=app.thresholds,
            min_healthy=options.min_healthy,
            history=options.history,
        )

    def make_feed(console: TopApp) -> Feed:
        if contexts:
            from cli_devops.top.contexts import contexts_feed

            return contexts_feed(
                contexts,
                console,
                interval=options.interval,
                history=options.history,
                min_healthy=options.min_healthy,
            )
        if recording is not None:
            return ReplayFeed(
                recording,
                make_state,
                console.deliver,
                console.crashed,
                speed=options.speed,
                say=console.say,
                start_at=options.at,
            )
        assert source is not None
        return LiveFeed(
            SourcePolls(source, env.now),
            make_state(),
            console.deliver,
            console.crashed,
            interval=interval,
            monotonic=env.monotonic,
            recorder=recorder,
            say=console.say,
            start_at=options.at,
        )

    console = TopApp(make_feed, clock=env.monotonic, player=recording is not None, color=env.color)
    console.paused = recording is not None and options.at is not None  # a replay opens paused
    return Session(console, recording, recorder)


def top(
    app: RunConfig,
    options: TopOptions,
    source: FleetSource | None = None,
    contexts: Sequence[tuple[str, RunConfig]] = (),
) -> ExitStatus:
    """Run the console until `q` (exit 0), Ctrl+C (130), SIGTERM or SIGHUP (143, 129); the
    terminal is restored and the recording closed each way."""
    env = app.env
    if not env.stdout_isatty:
        raise UsageError(NOT_A_TERMINAL)
    if not sys.stderr.isatty():  # where Textual draws
        raise UsageError(STDERR_NOT_A_TERMINAL)
    session = prepare(app, options, source, contexts)
    try:
        with (
            env.holding_warnings(),
            stop_signals(session.console.stop_by_signal, signals=RAW_TERMINAL_SIGNALS),
        ):
            if session.recording is not None and session.recording.skipped:
                env.warn(skipped_warning(session.recording.skipped))
            session.console.run()
    finally:
        session.close()
    if session.console.failure is not None:
        raise session.console.failure
    if session.console.return_code:  # Textual stopped on an error of its own, already shown
        return ExitStatus.INTERNAL_ERROR
    if session.console.stopped_by is not None:
        raise Stopped(session.console.stopped_by)
    return ExitStatus.OK


def skipped_warning(skipped: int) -> str:
    if skipped == 1:
        return "1 line of the recording was skipped (cut short or corrupt)"
    return f"{skipped} lines of the recording were skipped (cut short or corrupt)"
