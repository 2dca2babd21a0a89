"""What `track` remembers between polls, in memory that does not grow with the run's length.

Each instance keeps its last `history` samples of CPU and memory in fixed-size ring buffers (the
sparklines) and running min/sum/max since it was first seen (min/avg/max and the final summary).
Instances that leave the `/servers` list are kept as *gone* for a few polls, then retired to a
bounded list that only the final summary reads. Pure data: no I/O, no clock of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cli_devops.health import Status, Thresholds, instance_status, outliers
from cli_devops.model import Instance, ip_sort_key
from cli_devops.settings import DEFAULT_HISTORY

GONE = "Gone"
"""The status shown for an instance that has left the listing."""
ROW_ORDER = {Status.UNHEALTHY.value: 0, Status.UNKNOWN.value: 1, GONE: 2, Status.HEALTHY.value: 3}
"""Worst first: the order rows of `track` and `top` are shown in."""

GONE_POLLS = 3
"""An instance missing from the listing is shown as gone for this many polls, then dropped."""
MAX_RETIRED = 100
"""Dropped instances remembered for the final summary; the oldest are forgotten first."""

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
ASCII_LEVELS = "_.-:=+*#"


def sparkline(
    values: Sequence[float | None],
    width: int,
    *,
    low: float = 0.0,
    high: float = 100.0,
    levels: str = SPARK_LEVELS,
) -> str:
    """The last `width` values, one character each, on a fixed `low`..`high` scale.

    A fixed scale keeps instances comparable (a flat line at 40% does not look like noise). A
    missing sample (a failed poll, an unreadable instance) is a space; fewer samples than
    `width` are padded on the left, so the newest sample is always the last character.
    """
    if width <= 0:
        return ""
    recent = list(values)[-width:]
    steps = len(levels)
    span = high - low
    chars = []
    for value in recent:
        if value is None:
            chars.append(" ")
            continue
        index = int((value - low) / span * steps) if span > 0 else 0
        chars.append(levels[min(max(index, 0), steps - 1)])
    return " " * (width - len(recent)) + "".join(chars)


@dataclass
class Stats:
    """Running count, min, mean and max of the samples seen: constant size."""

    count: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


class Series:
    """One figure of one instance: the last `size` samples (None for a gap) and all-time stats."""

    __slots__ = ("recent", "stats")

    def __init__(self, size: int) -> None:
        self.recent: deque[float | None] = deque(maxlen=size)
        self.stats = Stats()

    def add(self, value: float | None) -> None:
        self.recent.append(value)
        if value is not None:
            self.stats.add(value)


@dataclass
class InstanceTrack:
    """The tracked history of one instance (by IP)."""

    ip: str
    cpu: Series
    memory: Series
    latest: Instance
    seen: int = 0
    """Successful polls whose listing included this instance."""
    healthy: int = 0
    """Of those, the polls in which it was Healthy."""
    missing: int = 0
    """Consecutive successful polls whose listing did not include it (0: present)."""
    order: tuple[int, int] = field(init=False, repr=False, compare=False)
    """`ip_sort_key(ip)`, parsed once: the live view sorts every instance on every redraw."""

    def __post_init__(self) -> None:
        self.order = ip_sort_key(self.ip)

    @property
    def gone(self) -> bool:
        return self.missing > 0

    @property
    def healthy_share(self) -> float | None:
        """Percent of the polls that listed it in which it was Healthy."""
        return 100.0 * self.healthy / self.seen if self.seen else None


@dataclass
class TrackState:
    """Everything the live view and the summary show, updated once per poll.

    Times are passed in by the poll loop: `moment` (wall clock, for display) and `clock`
    (monotonic seconds, for ages and durations), so tests drive it without waiting.
    """

    service: str
    base_url: str
    interval: float
    thresholds: Thresholds = field(default_factory=Thresholds)
    min_healthy: int = 2
    history: int = DEFAULT_HISTORY
    polls: int = 0
    failed: int = 0
    partial: int = 0
    """Successful polls in which some instance could not be read (for --strict)."""
    first_clock: float | None = None
    last_clock: float | None = None
    poll_started: float | None = None
    """Monotonic start of the poll in flight, None between polls."""
    last_moment: datetime | None = None
    last_ok_clock: float | None = None
    last_ok_moment: datetime | None = None
    last_ok_poll: int = 0
    error: str | None = None
    """Why the latest poll failed; None when it succeeded (the data is current)."""
    tracks: dict[str, InstanceTrack] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)
    """IPs of the outliers of the latest successful poll (`health.outliers`)."""
    retired: deque[InstanceTrack] = field(default_factory=lambda: deque(maxlen=MAX_RETIRED))

    @property
    def stale(self) -> bool:
        return self.error is not None

    def begin_poll(self, clock: float) -> None:
        self.poll_started = clock
        if self.first_clock is None:
            self.first_clock = clock

    def record(
        self, members: Iterable[Instance], *, moment: datetime, clock: float, past: bool = False
    ) -> None:
        """A successful poll: `members` are the service's instances as just read.

        With `past`, a sample from a source's history (before the first poll): the instances'
        trends and figures take it, but it is not counted as a poll of this run.
        """
        if not past:
            self._count_poll(moment, clock)
            self.error = None
            self.last_ok_clock, self.last_ok_moment, self.last_ok_poll = clock, moment, self.polls
        listed: set[str] = set()
        members = list(members)
        self.flagged = outliers(members)
        for instance in members:
            listed.add(instance.ip)
            track = self.tracks.get(instance.ip) or self._revive(instance)
            track.latest = instance
            track.missing = 0
            track.seen += 1
            if instance_status(instance, self.thresholds) is Status.HEALTHY:
                track.healthy += 1
            track.cpu.add(instance.cpu)
            track.memory.add(instance.memory)
        for ip, track in list(self.tracks.items()):
            if ip in listed:
                continue
            track.missing += 1
            track.cpu.add(None)
            track.memory.add(None)
            if track.missing > GONE_POLLS:
                self.retired.append(self.tracks.pop(ip))

    def record_failure(self, error: str, *, moment: datetime, clock: float) -> None:
        """A failed poll: the data is kept (stale) and every trend gets a gap."""
        self._count_poll(moment, clock)
        self.failed += 1
        self.error = error
        for track in self.tracks.values():
            track.cpu.add(None)
            track.memory.add(None)

    def status_of(self, track: InstanceTrack) -> str:
        """Healthy/Unhealthy/Unknown as of its latest answer, or Gone."""
        if track.gone:
            return "Gone"
        return instance_status(track.latest, self.thresholds).value

    def all_tracks(self) -> list[InstanceTrack]:
        """Current and retired instances in IP order (what the final summary covers)."""
        everything = {track.ip: track for track in self.retired}
        everything.update(self.tracks)
        return sorted(everything.values(), key=lambda track: track.order)

    def _count_poll(self, moment: datetime, clock: float) -> None:
        self.polls += 1
        self.poll_started = None
        self.last_moment, self.last_clock = moment, clock
        if self.first_clock is None:
            self.first_clock = clock

    def _revive(self, instance: Instance) -> InstanceTrack:
        """A new instance, or a retired one that came back (its history continues)."""
        for track in self.retired:
            if track.ip == instance.ip:
                self.retired.remove(track)
                break
        else:
            track = InstanceTrack(
                instance.ip, Series(self.history), Series(self.history), latest=instance
            )
        self.tracks[instance.ip] = track
        return track
