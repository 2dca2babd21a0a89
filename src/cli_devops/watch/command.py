"""`watch`: poll the fleet, print each transition as a JSON line, and deliver it.

Ctrl+C ends it with exit 130, SIGTERM (systemd, a container runtime) and SIGHUP with 0; either
way one summary line goes to stderr after the deliveries in flight had a bounded time to end.
A reader of stdout that went away ends it too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from cli_devops.errors import ApiUnreachable, ExitStatus
from cli_devops.lifecycle import SIGINT, ReaderGone, run_until_stopped
from cli_devops.polling import Ticker
from cli_devops.run_config import RunConfig, open_source, report_unread
from cli_devops.service_names import match_service, services_of
from cli_devops.settings import DEFAULT_MIN_HEALTHY
from cli_devops.text import plural
from cli_devops.watch.deliveries import Deliveries, DeliveryCounts, Receivers
from cli_devops.watch.detector import Detector, Moment
from cli_devops.watch.events import FIRING_KINDS, Event

DEFAULT_INTERVAL = 5.0


@dataclass(frozen=True)
class WatchOptions:
    service: str | None = None
    """Only this service; None: every service."""
    min_healthy: int = DEFAULT_MIN_HEALTHY
    hold: float = 0.0
    """How long a condition must last before its event (Prometheus's `for`)."""
    interval: float = DEFAULT_INTERVAL
    receivers: Receivers = field(default_factory=Receivers)


@dataclass
class Tally:
    """What the summary line says."""

    polls: int = 0
    failed: int = 0
    events: Counter[str] = field(default_factory=Counter)
    firing: int = 0
    deliveries: DeliveryCounts | None = None
    started: float = 0.0
    ended: float = 0.0

    def line(self) -> str:
        fired = sum(self.events[kind] for kind in FIRING_KINDS)
        recovered = sum(self.events.values()) - fired
        parts = [
            f"watched for {_duration(self.ended - self.started)}",
            plural(self.polls, "poll") + (f" ({self.failed} failed)" if self.failed else ""),
            f"{plural(fired + recovered, 'event')} ({fired} firing, {recovered} recovered)",
            f"{self.firing} still firing",
        ]
        counts = self.deliveries
        if counts is not None and (counts.delivered or counts.failed or counts.cut_short):
            delivered = f"{plural(counts.delivered, 'delivery', 'deliveries')}"
            dropped = f", {counts.dropped} dropped" if counts.dropped else ""
            parts.append(
                f"{delivered}, {counts.failed} failed, {counts.cut_short} cut short{dropped}"
            )
        return "; ".join(parts)


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def watch(app: RunConfig, options: WatchOptions) -> ExitStatus:
    """Watch until a stop signal or the reader of stdout goes away."""
    tally = Tally(started=app.env.monotonic())
    stopped = run_until_stopped(_watch(app, options, tally))
    tally.ended = app.env.monotonic()
    app.env.warn(tally.line())
    return ExitStatus.INTERRUPTED if stopped == SIGINT else ExitStatus.OK


async def _watch(app: RunConfig, options: WatchOptions, tally: Tally) -> None:
    env = app.env
    source = open_source(app)
    detector = Detector(app.thresholds, options.min_healthy, hold=options.hold,
                        service=options.service, source=source.name)  # fmt: skip
    ticker = Ticker(options.interval, env.monotonic)
    found = options.service is None
    unread = 0
    notes: tuple[str, ...] = ()
    async with source, Deliveries(env, options.receivers) as deliveries:
        tally.deliveries = deliveries.counts
        while True:
            await asyncio.sleep(ticker.delay())
            at = Moment(env.now(), env.monotonic())
            tally.polls += 1
            try:
                snapshot = await source.read()
            except ApiUnreachable as err:
                tally.failed += 1
                events = detector.unreachable(at, str(err))
            else:
                if not found and options.service is not None:
                    first = tally.polls - tally.failed == 1
                    names = services_of(snapshot.instances)
                    name = match_service(options.service, names, suggest=first)
                    if name is not None:
                        detector.rename(name)
                        found = True
                if snapshot.notes != notes:  # skipped entries, targets down: when they change
                    notes = snapshot.notes
                    for note in notes:
                        env.warn(note)
                if len(snapshot.unread) != unread:
                    unread = len(snapshot.unread)
                    report_unread(snapshot.unread, len(snapshot.instances), env)
                events = detector.observe(at, snapshot.instances)
            for event in events:
                _emit(app, event, tally)
                deliveries.event(event)
            tally.firing = len(detector.firing())
            deliveries.tick(detector.firing(), at.time, at.clock)


def _emit(app: RunConfig, event: Event, tally: Tally) -> None:
    """One JSON line on stdout, flushed at once (a pipe would otherwise hold it)."""
    env = app.env
    tally.events[event.kind] += 1
    with env.writing_data():
        env.stdout.write(event.to_json() + "\n")
    if env.stdout_closed:
        raise ReaderGone
