"""How many API requests are in flight at once: a fixed number, or one that adapts.

The right number depends on the API. A concurrent server 20 ms away needs a couple of hundred
requests in flight to be fast, while a single-threaded server with a listen backlog of 5 gets
*slower* with more than a handful (its kernel drops connection attempts, which are retried only
after a second). `AdaptiveLimiter` finds the number at run time, the way TCP finds a window:

* **Slow start.** Begin at `INITIAL_LIMIT` and add one per answer, which doubles the limit
  every round trip, while the round trip stays flat: its median at most `TOLERANCE` times the
  lowest median seen. Flat latency under more load means the server and this process have room.
  The first risen round trip is sat out (it may only be paying for the new connections); the
  second ends slow start.
* **Congestion avoidance.** Then grow by sqrt(limit) per flat round trip, and when the median
  rises above `TOLERANCE` times the lowest, shrink in proportion to the rise (Little's law: for
  the same throughput at a lower latency, proportionally fewer requests in flight), but never
  below `LATENCY_FLOOR` for latency alone.
* **Multiplicative decrease.** A timeout, a failed or reset connection, an overload status
  (429, 503) or a stall (`SPIKE_FACTOR` times the usual round trip and `SPIKE_MIN_SECONDS`
  more) halves the limit. As in TCP, only once per round trip: the failures of requests sent
  under the old, larger limit do not count again.

Each verdict is on requests sent under the current limit (in slow start, also the previous
round trip's). The limit stays within [1, `MAX_LIMIT`], and `cap()` lowers the ceiling, e.g. for
a server that closes every connection (HTTP/1.0 or `Connection: close`), which is the mark of a
small, often single-threaded server.

**Congestion or stuck?** Only answers and overload signals judge the load: rising latency of the
requests that *answer*, 429 and 503, refused, reset or dropped connections, truncated answers.
A request that *times out* says nothing about load by itself: it is the mark of an instance that
is stuck while the others may answer fine (halving the limit for it collapsed the limit to one
request at a time against a few hung instances). Timeouts and requests cut by the read's
deadline (`release(..., cut=True)`) are not judged at all, so a short scrape timeout cannot teach
the next scrape a lower limit. So that stuck instances cannot hold every slot either, a request
still unanswered after `STUCK_FACTOR` times the usual round trip (at least `STUCK_MIN_SECONDS`)
is *parked*: it gives its slot back and waits outside the limit. At most `maximum` requests are
parked at once (none under `cap()`, whose small servers lose connection attempts when sent more),
so the connections open stay bounded by twice the ceiling whatever the API does. A retry's
backoff sleep holds no slot (the client releases before it sleeps).

`FixedLimiter` is the same interface with a constant limit (`--concurrency N`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

INITIAL_LIMIT = 8
MAX_LIMIT = 256
"""Ceiling of the adaptive limit: each request in flight holds a connection (a file descriptor,
and a connection the API has to serve), and near this many at 20 ms one process's event loop
is already saturated on the machine of `bench/RESULTS.md`."""
CLOSE_LIMIT = 4
"""Ceiling for a server that closes every connection: below the listen backlog of 5 of the
classic single-threaded servers (Python's http.server), so no connection attempt is dropped."""
TOLERANCE = 1.25
SPIKE_FACTOR = 4.0
SPIKE_MIN_SECONDS = 0.25
"""A request counts as a latency spike only when it is also this much slower than usual; a
dropped connection attempt costs a full second, scheduling noise a few milliseconds."""
LATENCY_FLOOR = INITIAL_LIMIT
"""Latency alone never lowers the limit below this (failures and spikes do): when this process's
own CPU is the bottleneck, latency rises with every request added however few are in flight,
and a handful in flight is what keeps both ends busy."""
MIN_WINDOW = 16
"""Fewest answers a verdict is based on: the median of four is mostly noise."""
STUCK_FACTOR = 8.0
STUCK_MIN_SECONDS = 0.1
"""A request unanswered this long (or `STUCK_FACTOR` usual round trips, whichever is longer) is
parked: its slot goes to the next request (adaptive limit only)."""
SWEEP_SECONDS = 0.05
"""How often requests in flight are checked for being stuck."""


@dataclass(eq=False)
class Ticket:
    """What `acquire` hands out and `release` takes back: when the request started, under
    which adjustment (`epoch`) of the limit, and whether it was parked (holds no slot)."""

    started: float
    epoch: int
    parked: bool = False
    released: bool = False


class LimiterStats(NamedTuple):
    requests: int
    peak_limit: int
    final_limit: int
    mean_in_flight: float
    seconds: float

    def describe(self, mode: str) -> str:
        return (
            f"{self.requests} instance requests in {self.seconds:.2f}s, concurrency {mode}: "
            f"limit peak {self.peak_limit}, final {self.final_limit}, "
            f"mean in flight {self.mean_in_flight:.1f}"
        )


class FixedLimiter:
    """At most `limit` requests in flight; waiters are served first come, first served."""

    mode = "fixed"

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = float(limit)
        self._clock = clock
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._parked = 0
        self._open: set[Ticket] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_loop: asyncio.AbstractEventLoop | None = None
        self._epoch = 0
        self._requests = 0
        self._peak = limit
        self._first = -1.0
        self._last = 0.0
        self._area = 0.0

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def cap(self, ceiling: int) -> None:
        """Lower the ceiling of an adaptive limit; a fixed limit is the user's choice and stays."""

    def try_acquire(self) -> Ticket | None:
        """A slot at once if one is free and nobody waits, else None (no waiting)."""
        if self._in_flight >= self.limit or self._waiters:
            return None
        now = self._clock()
        self._tick(now)
        self._in_flight += 1
        return self._ticket(now)

    def _ticket(self, now: float) -> Ticket:
        ticket = Ticket(now, self._epoch)
        if self._park_room() > 0:
            self._open.add(ticket)
            loop = asyncio.get_running_loop()
            if self._sweeper is None or self._sweep_loop is not loop:
                self._sweep_loop = loop
                self._sweeper = loop.call_later(SWEEP_SECONDS, self._sweep)
        return ticket

    async def acquire(self) -> Ticket:
        """Wait for a free slot; the caller must `release` the ticket exactly once."""
        if self._in_flight >= self.limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._in_flight -= 1  # the slot was handed over: pass it on
                    self._wake()
                elif waiter in self._waiters:  # `_wake` may have dropped it already
                    self._waiters.remove(waiter)
                raise
            now = self._clock()
        else:
            now = self._clock()
            self._tick(now)
            self._in_flight += 1
        return self._ticket(now)

    def release(self, ticket: Ticket, *, congested: bool = False, cut: bool = False) -> None:
        """Return a slot. `congested` marks a failure that means "too much load" (a refused or
        reset connection, 429/503); other failures are not the load's fault. `cut` marks a
        request that ended without an answer through no sign of load (cut by the read's
        deadline, or timed out: a stuck instance): it is not judged at all."""
        if ticket.released:
            return
        ticket.released = True
        self._open.discard(ticket)
        now = self._clock()
        if ticket.parked:
            self._parked -= 1
        else:
            self._tick(now)
            self._in_flight -= 1
        self._requests += 1
        if not cut:
            self._observe(ticket, now - ticket.started, congested)
        self._wake()

    @property
    def parked(self) -> int:
        """Requests still in flight that hold no slot (see the module docstring)."""
        return self._parked

    def _park_room(self) -> int:
        return 0

    def _stuck_after(self) -> float:
        return STUCK_MIN_SECONDS

    def _sweep(self) -> None:
        """Park the requests that have been in flight too long (see the module docstring)."""
        self._sweeper = None
        now = self._clock()
        stuck_before = now - self._stuck_after()
        for ticket in [t for t in self._open if t.started < stuck_before]:
            if self._park_room() <= 0:
                break
            self._open.discard(ticket)
            ticket.parked = True
            self._parked += 1
            self._tick(now)
            self._in_flight -= 1
        self._wake()
        if self._open and self._sweep_loop is not None:
            self._sweeper = self._sweep_loop.call_later(SWEEP_SECONDS, self._sweep)

    def reset_stats(self) -> None:
        """Start counting requests and concurrency afresh; the limit itself is kept."""
        self._requests = 0
        self._peak = self.limit
        self._first = -1.0
        self._area = 0.0

    def stats(self) -> LimiterStats:
        seconds = max(0.0, self._last - self._first) if self._first >= 0 else 0.0
        mean = self._area / seconds if seconds > 0 else float(self._in_flight)
        return LimiterStats(self._requests, self._peak, self.limit, mean, seconds)

    def describe(self) -> str:
        return self.stats().describe(self.mode)

    def _observe(self, ticket: Ticket, rtt: float, congested: bool) -> None:
        """Adjust the limit after a request; a fixed limit does not."""

    def _tick(self, now: float) -> None:
        """Integrate the in-flight count over time (for the mean concurrency really used);
        called before every change of the count."""
        if self._first < 0:
            self._first = now
        else:
            self._area += self._in_flight * (now - self._last)
        self._last = now

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)


class AdaptiveLimiter(FixedLimiter):
    """A limit that follows the API's latency and failures; see the module docstring."""

    mode = "adaptive"

    def __init__(
        self,
        *,
        initial: int = INITIAL_LIMIT,
        maximum: int = MAX_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(min(initial, maximum), clock=clock)
        self._maximum = maximum
        self._slow_start = True
        self._base_rtt = math.inf
        self._samples: list[float] = []
        self._window = max(MIN_WINDOW, self.limit)
        self._holding = False

        self._capped = False

    @property
    def maximum(self) -> int:
        return self._maximum

    def cap(self, ceiling: int) -> None:
        ceiling = max(1, ceiling)
        self._capped = True
        if ceiling < self._maximum:
            self._maximum = ceiling
            if self._limit > ceiling:
                self._set(ceiling)

    def _park_room(self) -> int:
        return 0 if self._capped else self._maximum - self._parked

    def _stuck_after(self) -> float:
        base = self._base_rtt if math.isfinite(self._base_rtt) else 0.0
        return max(STUCK_MIN_SECONDS, STUCK_FACTOR * base)

    def _observe(self, ticket: Ticket, rtt: float, congested: bool) -> None:
        spike = rtt > self._base_rtt * SPIKE_FACTOR and rtt > self._base_rtt + SPIKE_MIN_SECONDS
        # Judge only requests sent under the current limit; in slow start the limit grows with
        # every answer, so the previous round trip's answers count too.
        previous = self._slow_start and ticket.epoch == self._epoch - 1
        if ticket.epoch != self._epoch and not previous:
            return
        if congested or spike:
            self._slow_start = False
            self._set(self._limit / 2)
            return
        if self._slow_start and not self._holding:
            self._grow(self._limit + 1)  # +1 per answer: doubles once per round trip
        self._samples.append(rtt)
        if len(self._samples) < self._window:
            return
        self._samples.sort()
        median = self._samples[len(self._samples) // 2]
        self._base_rtt = min(self._base_rtt, median)
        ratio = median / self._base_rtt if self._base_rtt > 0 else 1.0
        if ratio <= TOLERANCE:
            self._holding = False
            self._set(self._limit if self._slow_start else self._limit + math.sqrt(self._limit))
        elif self._slow_start and not self._holding:
            self._holding = True  # sit out one round trip: new connections make it slow
            self._set(self._limit)
        else:
            self._slow_start = False
            shrunk = self._limit * max(0.5, TOLERANCE / ratio)
            self._set(max(shrunk, min(self._limit, LATENCY_FLOOR)))

    def _grow(self, limit: float) -> None:
        """Raise the limit within the current epoch (slow start)."""
        self._limit = min(float(self._maximum), limit)
        self._peak = max(self._peak, self.limit)

    def _set(self, limit: float) -> None:
        """Start a new epoch at `limit` (clamped); samples of the old one no longer count."""
        self._limit = min(float(self._maximum), max(1.0, limit))
        self._peak = max(self._peak, self.limit)
        self._epoch += 1
        self._samples = []
        self._window = max(MIN_WINDOW, self.limit)
