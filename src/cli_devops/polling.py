"""When polls happen and how their time is written: shared by `track` and `top`."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Ticker:
    """Poll start times on a fixed grid: start, start + interval, start + 2 * interval, ...

    The time a poll takes is thus subtracted from the wait, and late wake-ups do not add up. A
    poll that overruns its slot skips the missed slots instead of firing a burst of catch-up
    polls at an API that is already slow.
    """

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self._start: float | None = None
        self._slot = 0

    def delay(self) -> float:
        """Seconds to wait before the next poll (0 for the first)."""
        now = self.clock()
        if self._start is None:
            self._start = now
            return 0.0
        self._slot += 1
        due = self._start + self._slot * self.interval
        if due < now:
            self._slot = math.floor((now - self._start) / self.interval) + 1
            due = self._start + self._slot * self.interval
        return due - now


def age(seconds: float) -> str:
    """A short duration for people: 0s, 42s, 3m05s, 2h10m."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
