"""`track`: poll one service's instances every interval until Ctrl+C (or --count polls).

On a terminal with table output the polls feed a live view (see `live.py`) that redraws in place
and ends with a summary. Otherwise each poll becomes one record: `-o json` writes one JSON object
per line (NDJSON), `-o csv` one row per instance with a `time` column, the table format a
timestamped table per poll. A failed poll is recorded too, and the next poll tries again.

Ctrl+C cancels the poll loop wherever it waits, mid-request included, so connections are closed
and the command exits 0 at once. SIGTERM and SIGHUP end it the same way (the terminal is given
back: alternate screen off, cursor shown; after SIGHUP the terminal is gone, so no summary), and
so does a reader of the records going away (`track X -o json | head -1`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

from cli_devops import lifecycle
from cli_devops.environment import Environment
from cli_devops.errors import ApiUnreachable, ExitStatus, IncompleteData
from cli_devops.history import TrackState
from cli_devops.lifecycle import Stopped
from cli_devops.model import Instance
from cli_devops.polling import Ticker, rfc3339
from cli_devops.render import OutputFormat, RecordWriter, make_console, supports_unicode
from cli_devops.reports import instances_report
from cli_devops.run_config import RunConfig, open_source, report_unread
from cli_devops.service_names import resolve_service, services_of
from cli_devops.settings import DEFAULT_HISTORY, DEFAULT_MIN_HEALTHY, DEFAULT_TRACK_INTERVAL
from cli_devops.text import plural
from cli_devops.track.keys import KeyListener

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

    from cli_devops.model import Snapshot
    from cli_devops.sources.base import FleetSource

REDRAW_SECONDS = 0.5
"""How often the live view is redrawn between polls (ages, resizes)."""


@dataclass(frozen=True)
class TrackOptions:
    interval: float = DEFAULT_TRACK_INTERVAL
    count: int | None = None
    """Stop after this many polls; None: until Ctrl+C."""
    history: int = DEFAULT_HISTORY
    """Samples per sparkline (live view only)."""
    min_healthy: int = DEFAULT_MIN_HEALTHY
    output: OutputFormat = "table"
    headers: bool = True
    """Header lines in table and CSV records."""


class Poll(NamedTuple):
    moment: datetime
    service: str
    members: list[Instance]
    error: str | None


def track(app: RunConfig, service: str, options: TrackOptions | None = None) -> ExitStatus:
    """Poll until `options.count` polls are done (exit 0), `q`/Escape in the live view (0), or
    a signal: Ctrl+C raises `Stopped` (130) after the summary, SIGTERM and SIGHUP too (143, 129).

    With `app.strict`, a run in which any poll failed or missed an instance raises
    IncompleteData at the end (exit 4), however it ended.
    """
    options = options or TrackOptions()
    env = app.env
    source = open_source(app)
    state = TrackState(
        service=service,
        base_url=source.name,
        interval=options.interval,
        thresholds=app.thresholds,
        min_healthy=options.min_healthy,
        history=options.history,
    )
    sink: LiveScreen | Records
    if options.output == "table" and env.stdout_isatty:
        sink = LiveScreen(env, state)
    else:
        sink = Records(app, RecordWriter(options.output, env, options.headers))
    with sink:
        stopped_by = lifecycle.run_until_stopped(_track(app, source, state, sink, options))
    if isinstance(sink, LiveScreen) and stopped_by != _HANGUP:
        with contextlib.suppress(OSError):
            sink.print_summary()
    with env.writing_data():
        env.stdout.flush()
    incomplete = state.failed + state.partial
    if app.strict and incomplete:
        raise IncompleteData(
            f"{incomplete} of {plural(state.polls, 'poll')} "
            f"{'was' if incomplete == 1 else 'were'} incomplete"
        )
    if stopped_by is not None:
        raise Stopped(stopped_by)  # 130 for Ctrl+C, 143 for SIGTERM, 129 for SIGHUP
    return ExitStatus.OK


_HANGUP = getattr(signal, "SIGHUP", None)


async def _track(
    app: RunConfig,
    source: FleetSource,
    state: TrackState,
    sink: LiveScreen | Records,
    options: TrackOptions,
) -> None:
    work = asyncio.current_task()
    painter = asyncio.ensure_future(sink.animate(work.cancel if work else lambda: None))
    try:
        await _poll_loop(app, source, state, sink, options)
    finally:
        painter.cancel()
        await asyncio.wait({painter})
        if not painter.cancelled():
            painter.result()


async def _poll_loop(
    app: RunConfig,
    source: FleetSource,
    state: TrackState,
    sink: LiveScreen | Records,
    options: TrackOptions,
) -> None:
    env = app.env
    service = state.service  # as typed, until the first answer says which service it means
    ticker = Ticker(options.interval, env.monotonic)
    name: str | None = None
    polls = 0
    async with source:
        while options.count is None or polls < options.count:
            await asyncio.sleep(ticker.delay())
            polls += 1
            state.begin_poll(env.monotonic())
            moment = env.now()
            try:
                snapshot = await source.read()
            except ApiUnreachable as err:
                reason = str(err.__cause__ or err)  # the view already shows the URL
                state.record_failure(reason, moment=moment, clock=env.monotonic())
                sink.show(Poll(moment, name or service, [], str(err)))
                continue
            if name is None:
                name = resolve_service(service, services_of(snapshot.instances))
                state.service = name
                await _replay_history(app, source, state, sink, moment)
            members = [i for i in snapshot.instances if i.service == name]
            state.record(members, moment=moment, clock=env.monotonic())
            if snapshot.unread:
                state.partial += 1
            sink.show(Poll(moment, name, members, None), snapshot)


async def _replay_history(
    app: RunConfig,
    source: FleetSource,
    state: TrackState,
    sink: LiveScreen | Records,
    moment: datetime,
) -> None:
    """Before the first poll's record: the service's history from a source that keeps it
    (Prometheus), one step per interval over the window the sparklines show, so the view opens
    full and piped output starts with those past records. Later polls of such a source read
    the service's series only."""
    source.focus(state.service)  # later polls may read this service's figures only
    if not source.keeps_history:
        return
    if state.history < 2:
        return
    now = moment.timestamp()
    end = now - state.interval
    start = end - (state.history - 2) * state.interval
    try:
        steps = await source.history(state.service, start, end, state.interval)
    except ApiUnreachable as err:
        app.env.warn(f"no history: {err}")
        return
    clock = app.env.monotonic()
    for at, members in steps:
        past = datetime.fromtimestamp(at, UTC)
        state.record(members, moment=past, clock=clock - (now - at), past=True)
        sink.show(Poll(past, state.service, members, None))


class Records:
    """Piped output: one record per poll, and failures and unread instances on stderr."""

    def __init__(self, app: RunConfig, writer: RecordWriter) -> None:
        self.app = app
        self.writer = writer

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    async def animate(self, quit_view: Callable[[], object]) -> None:
        return None

    def show(self, poll: Poll, snapshot: Snapshot | None = None) -> None:
        env = self.app.env
        if poll.error:
            env.warn(poll.error)
        if snapshot is not None:
            report_unread(snapshot.unread, len(snapshot.instances), env)
        with env.writing_data():
            report = instances_report(poll.members, self.app.thresholds)
            self.writer.write(rfc3339(poll.moment), poll.service, report, poll.error)
        if env.stdout_closed:
            raise lifecycle.ReaderGone


class LiveScreen:
    """The live view on the terminal's alternate screen; the normal screen is restored on exit.

    Nothing else may write to the terminal meanwhile, so failures and unread instances are shown
    in the view rather than on stderr, and `--debug` lines are held until the view is closed.
    """

    def __init__(self, env: Environment, state: TrackState) -> None:
        self.env = env
        self.state = state
        self.console: Console | None = None
        self.live: Live | None = None
        self._holding = contextlib.ExitStack()
        self.keys = KeyListener(env.stdin)

    def __enter__(self) -> LiveScreen:
        from rich.live import Live

        self._holding.enter_context(self.env.holding_warnings())
        self._holding.enter_context(self.keys)
        self.console = make_console(self.env, follow_resizes=True)
        self.live = Live(
            console=self.console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()
        self.redraw()
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        try:
            if self.live is not None:
                with contextlib.suppress(OSError):  # a hung-up terminal cannot be written
                    self.live.stop()
        finally:
            self._holding.close()

    def redraw(self) -> None:
        from cli_devops.track.live import build_view

        assert self.live is not None and self.console is not None
        width, height = self.console.size
        view = build_view(
            self.state,
            now=self.env.monotonic(),
            width=width,
            height=height,
            unicode=self._unicode(),
        )
        self.live.update(view, refresh=True)

    def print_summary(self) -> None:
        """After the live view: the summary, on the normal screen, at the terminal's width."""
        from cli_devops.track.live import build_summary

        assert self.console is not None
        self.console.print(
            build_summary(self.state, unicode=self._unicode(), width=self.console.size.width)
        )

    def _unicode(self) -> bool:
        assert self.console is not None
        return supports_unicode(self.console)

    async def animate(self, quit_view: Callable[[], object]) -> None:
        """Redraw between polls; `q` or Escape calls `quit_view` (as Ctrl+C does)."""
        self.keys.listen(quit_view)
        while True:
            await asyncio.sleep(REDRAW_SECONDS)
            self.redraw()

    def show(self, poll: Poll, snapshot: Snapshot | None = None) -> None:
        self.redraw()
