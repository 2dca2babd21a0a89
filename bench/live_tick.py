"""Cost of one redraw of `track`'s live view as the service grows.

    python bench/live_tick.py SMALL LARGE

Builds a `track` state of SMALL and of LARGE instances of one service (30 polls each, so every
sparkline is full), then times one redraw: `build_view` plus rendering it to an 80x40 terminal
in colour, as `Live` does every half second. Prints `SMALL MS` and `LARGE MS` (median
milliseconds per redraw). The screen holds the same rows either way, so only the per-instance
work that is not layout (sorting, counting) may grow with the fleet.
"""

from __future__ import annotations

import io
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from rich.console import Console

from cli_devops.history import TrackState
from cli_devops.model import Instance
from cli_devops.track.live import build_view

WIDTH, HEIGHT = 80, 40
POLLS = 30
START = datetime(2026, 1, 1, tzinfo=UTC)


def tracked(size: int) -> TrackState:
    rng = random.Random(size)
    state = TrackState(service="UserService", base_url="http://127.0.0.1:8081", interval=3.0)
    ips = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(1, size + 1)]
    for poll in range(POLLS):
        clock = poll * state.interval
        members = [
            Instance(ip, "UserService", rng.uniform(0, 100), rng.uniform(0, 100)) for ip in ips
        ]
        state.begin_poll(clock)
        state.record(members, moment=START + timedelta(seconds=clock), clock=clock + 0.1)
    return state


def redraw_ms(state: TrackState, runs: int) -> float:
    console = Console(
        file=io.StringIO(), width=WIDTH, height=HEIGHT, force_terminal=True, color_system="256"
    )
    now = state.last_clock or 0.0
    times = []
    for _ in range(runs + 1):  # the first one warms caches and is not counted
        started = time.perf_counter()
        console.print(build_view(state, now=now, width=WIDTH, height=HEIGHT))
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:]) * 1000


def main(argv: list[str]) -> int:
    for size in (int(argv[0]), int(argv[1])):
        print(size, f"{redraw_ms(tracked(size), runs=15):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
