"""What the console shows, rebuilt after every poll off the UI loop: `FleetState` remembers (by
way of `history.TrackState`, the memory `track` uses), `Frame` is the immutable picture of it
that the screens lay out.

Memory is bounded by the history length: each instance and each service keeps its last
`history` samples, and instances that leave the fleet are forgotten after a few polls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cli_devops.health import (
    ServiceSummary,
    Status,
    Thresholds,
    summarize_services,
)
from cli_devops.history import InstanceTrack, Series, TrackState
from cli_devops.text import terminal_safe
from cli_devops.top.source import FleetReading

Trend = tuple["float | None", ...]


@dataclass(frozen=True)
class ServiceRow:
    service: str
    instances: int
    healthy: int
    unhealthy: int
    unknown: int
    outliers: int
    cpu_avg: float | None
    memory_avg: float | None
    cpu_trend: Trend
    memory_trend: Trend
    status: str
    """Healthy, or Unhealthy when it has fewer healthy instances than required; with every
    context, a context that could not be read is one row: Down, Slow or Waiting."""
    context: str | None = None
    """The context it belongs to (`top --all-contexts`)."""
    note: str | None = None
    """Why a context's row has no service (Down, Slow, Waiting)."""

    @property
    def key(self) -> str:
        """Its key in `Frame.instances`."""
        return service_key(self.context, self.service)


KEY_SEPARATOR = "\x00"
"""Between a context's name and a service's in a key: neither can contain it."""


def service_key(context: str | None, service: str) -> str:
    return service if context is None else f"{context}{KEY_SEPARATOR}{service}"


def key_title(key: str) -> str:
    """`prod › UserService` for a key of every context's view, the service's name otherwise."""
    return " › ".join(terminal_safe(part) for part in key.split(KEY_SEPARATOR))


@dataclass(frozen=True)
class InstanceRow:
    ip: str
    order: tuple[int, int]
    service: str | None
    status: str
    """Healthy, Unhealthy, Unknown, or Gone (no longer listed)."""
    cpu: float | None
    memory: float | None
    cpu_trend: Trend
    memory_trend: Trend
    cpu_stats: tuple[float | None, float | None, float | None]
    memory_stats: tuple[float | None, float | None, float | None]
    cpu_delta: float | None
    memory_delta: float | None
    outlier: bool
    error: str | None
    last_error: tuple[str, float] | None = None
    """The latest reason it could not be read, and the clock of that poll."""


@dataclass(frozen=True)
class Totals:
    instances: int = 0
    healthy: int = 0
    unhealthy: int = 0
    unknown: int = 0
    outliers: int = 0
    services: int = 0
    flagged: int = 0
    unassigned: int = 0
    """Instances that could not be read at all, so belong to no known service."""


@dataclass(frozen=True)
class Replay:
    """Where a replay is: poll `position` (1-based) of `total`."""

    position: int
    total: int
    speed: float
    paused: bool
    skipped: int

    @property
    def ended(self) -> bool:
        return self.position >= self.total


@dataclass(frozen=True)
class Frame:
    source: str
    interval: float
    thresholds: Thresholds
    min_healthy: int
    history: int
    clock: float
    """When the frame was built (the clock of `FleetState.apply`)."""
    polls: int = 0
    failed: int = 0
    moment: datetime | None = None
    ok_poll: int = 0
    ok_clock: float | None = None
    error: str | None = None
    services: tuple[ServiceRow, ...] = ()
    instances: Mapping[str, tuple[InstanceRow, ...]] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    replay: Replay | None = None
    historic: bool = False
    """A sample from the past, shown while the session goes on (time travel)."""
    contexts: tuple[str, ...] = ()
    """The contexts shown (`top --all-contexts`); empty for one fleet."""

    @property
    def stale(self) -> bool:
        return self.error is not None


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


class FleetState:
    """The fleet's history over the run; fed one `FleetReading` per poll (from one thread)."""

    def __init__(
        self,
        source: str,
        *,
        interval: float,
        thresholds: Thresholds,
        min_healthy: int,
        history: int,
    ) -> None:
        self.track = TrackState(
            service="",
            base_url=source,
            interval=interval,
            thresholds=thresholds,
            min_healthy=min_healthy,
            history=history,
        )
        self.service_cpu: dict[str, Series] = {}
        self.service_memory: dict[str, Series] = {}
        self.deltas: dict[str, tuple[float | None, float | None]] = {}
        self.summaries: list[ServiceSummary] = []
        self.unassigned = 0
        self.last_errors: dict[str, tuple[str, float]] = {}

    def apply(self, reading: FleetReading, clock: float, *, past: bool = False) -> None:
        """One poll; with `past`, a reading from the source's history before the first poll
        (its samples count, it is not a poll of this run)."""
        track = self.track
        if not past:
            track.begin_poll(clock)
        if reading.error is not None:
            track.record_failure(reading.error, moment=reading.time, clock=clock)
            for series in (*self.service_cpu.values(), *self.service_memory.values()):
                series.add(None)
            self.deltas = {}
            return
        deltas: dict[str, tuple[float | None, float | None]] = {}
        for instance in reading.instances:
            known = track.tracks.get(instance.ip)
            if known is not None and not known.gone:
                deltas[instance.ip] = (
                    _delta(instance.cpu, known.latest.cpu),
                    _delta(instance.memory, known.latest.memory),
                )
        self.deltas = deltas
        for instance in reading.instances:
            if instance.error is not None:
                self.last_errors[instance.ip] = (instance.error, clock)
        track.record(reading.instances, moment=reading.time, clock=clock, past=past)
        if len(self.last_errors) > len(track.tracks):
            self.last_errors = {
                ip: error for ip, error in self.last_errors.items() if ip in track.tracks
            }
        summaries = summarize_services(reading.instances, track.thresholds, track.min_healthy)
        self.unassigned = sum(1 for i in reading.instances if i.service is None)
        present = {s.service for s in summaries}
        for gone in set(self.service_cpu) - present:
            del self.service_cpu[gone], self.service_memory[gone]
        for summary in summaries:
            self.service_cpu.setdefault(summary.service, Series(track.history)).add(summary.cpu_avg)
            self.service_memory.setdefault(summary.service, Series(track.history)).add(
                summary.memory_avg
            )
        self.summaries = summaries

    def empty(self) -> FleetState:
        """A state with the same settings and no samples (to rebuild a moment of the past)."""
        track = self.track
        return FleetState(
            track.base_url,
            interval=track.interval,
            thresholds=track.thresholds,
            min_healthy=track.min_healthy,
            history=track.history,
        )

    def frame(self, clock: float, replay: Replay | None = None, *, historic: bool = False) -> Frame:
        track = self.track
        groups: dict[str, list[InstanceRow]] = {}
        for item in track.tracks.values():
            service = item.latest.service
            if service is not None:
                groups.setdefault(service, []).append(self._row(item))
        rows = tuple(self._service_row(summary) for summary in self.summaries)
        totals = Totals(
            instances=sum(r.instances for r in rows) + self.unassigned,
            healthy=sum(r.healthy for r in rows),
            unhealthy=sum(r.unhealthy for r in rows),
            unknown=sum(r.unknown for r in rows) + self.unassigned,
            outliers=sum(r.outliers for r in rows),
            services=len(rows),
            flagged=sum(1 for r in rows if r.status == Status.UNHEALTHY.value),
            unassigned=self.unassigned,
        )
        return Frame(
            source=track.base_url,
            interval=track.interval,
            thresholds=track.thresholds,
            min_healthy=track.min_healthy,
            history=track.history,
            clock=clock,
            polls=track.polls,
            failed=track.failed,
            moment=track.last_moment,
            ok_poll=track.last_ok_poll,
            ok_clock=track.last_ok_clock,
            error=track.error,
            services=rows,
            instances={name: tuple(members) for name, members in groups.items()},
            totals=totals,
            replay=replay,
            historic=historic,
        )

    def _service_row(self, s: ServiceSummary) -> ServiceRow:
        return ServiceRow(
            service=s.service,
            instances=s.instances,
            healthy=s.healthy,
            unhealthy=s.unhealthy,
            unknown=s.unknown,
            outliers=s.outliers,
            cpu_avg=s.cpu_avg,
            memory_avg=s.memory_avg,
            cpu_trend=tuple(self.service_cpu[s.service].recent),
            memory_trend=tuple(self.service_memory[s.service].recent),
            status=s.status.value,
        )

    def _row(self, item: InstanceTrack) -> InstanceRow:
        latest = item.latest
        gone = item.gone
        cpu_delta, memory_delta = self.deltas.get(item.ip, (None, None))
        cpu, memory = item.cpu.stats, item.memory.stats
        return InstanceRow(
            ip=item.ip,
            order=item.order,
            service=latest.service,
            status=self.track.status_of(item),
            cpu=None if gone else latest.cpu,
            memory=None if gone else latest.memory,
            cpu_trend=tuple(item.cpu.recent),
            memory_trend=tuple(item.memory.recent),
            cpu_stats=(cpu.low, cpu.mean, cpu.high),
            memory_stats=(memory.low, memory.mean, memory.high),
            cpu_delta=cpu_delta,
            memory_delta=memory_delta,
            outlier=not gone and item.ip in self.track.flagged,
            error=None if gone else latest.error,
            last_error=self.last_errors.get(item.ip),
        )
