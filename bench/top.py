"""`top` at fleet scale: key press latency, the console's own CPU, memory over a long run.

    python bench/top.py keys URL            # key presses, headless, while polling URL every 5 s
    python bench/top.py cpu URL SECONDS     # `cli_devops top --interval 5` in a terminal
    python bench/top.py memory SIZE POLLS   # memory after POLLS polls of SIZE instances

Each prints one JSON object. `bench/run.py` runs them against `cli_devops simulate` (another
process) at 150 instances and at the fleet size and reports the ratios.

- keys: Textual's pilot presses a key and waits until the app is idle again (the key handled
  and the screen refreshed); milliseconds per press, median and worst, for moving the cursor,
  applying a filter, drilling into the largest service and going back. The console polls the
  API all the while, on its own thread, as it does for a user.
- cpu: the console in a pseudo-terminal whose output is read all the while; the share of one
  core its process used (user + system, reads included) over SECONDS after the first poll, and
  its peak RSS.
- memory: a `FleetState` fed POLLS synthetic polls, a frame built after each as the console
  does; the process's RSS after a quarter of the polls and after all of them. With --history
  30 every buffer is full after 30 polls; from twice that on, memory must stay flat.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from run import Row, Sizes

CLK_TCK = os.sysconf("SC_CLK_TCK")
INTERVAL = 5.0
SIZE = (120, 40)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def _timed(app: Any, key: str, done: Callable[[], object]) -> float:
    """Milliseconds from a key arriving (as the terminal driver delivers it) until its effect
    (`done()`) is on the next screen refresh."""
    from textual import events

    character = key if len(key) == 1 else None
    started = time.perf_counter()
    app.post_message(events.Key(key, character))
    while not done():
        await asyncio.sleep(0.0005)
    refreshed = asyncio.Event()
    app.call_after_refresh(refreshed.set)
    await refreshed.wait()
    return (time.perf_counter() - started) * 1000


async def _until(pilot: Any, check: Callable[[], object], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("bench/top.py: the console did not get there in time")
        await pilot.pause(0.05)


def keys(url: str) -> dict[str, Any]:
    from cli_devops.environment import Environment
    from cli_devops.run_config import RunConfig
    from cli_devops.settings import ClientSettings
    from cli_devops.top.command import TopOptions, prepare

    app = RunConfig(ClientSettings(base_url=url), env=Environment(color=True))
    console = prepare(app, TopOptions(interval=INTERVAL)).console
    result: dict[str, Any] = {}

    async def scenario() -> None:
        async with console.run_test(size=SIZE) as pilot:
            await _until(pilot, lambda: console.frame is not None)
            frame = console.frame
            assert frame is not None
            largest = max(frame.services, key=lambda row: row.instances)
            result["instances"] = frame.totals.instances
            result["largest_service"] = largest.instances
            moves = []
            for n in range(40):
                key, step = ("down", 1) if n % 10 < 5 else ("up", -1)
                table = console.screen.table
                wanted = table.cursor + step
                moves.append(await _timed(console, key, lambda t=table, w=wanted: t.cursor == w))
            filters, drills, backs, inner = [], [], [], []
            for _ in range(5):
                fleet_screen = console.screen
                await pilot.press("slash", *largest.service)
                filters.append(await _timed(console, "enter", lambda s=fleet_screen: s.filter_text))
                drills.append(await _timed(console, "enter", lambda s=fleet_screen: (
                    console.screen is not s and console.screen.table.rows)))  # fmt: skip
                for _ in range(5):
                    table = console.screen.table
                    wanted = min(table.cursor + 1, len(table.rows) - 1)
                    inner.append(await _timed(console, "down",
                                              lambda t=table, w=wanted: t.cursor == w))  # fmt: skip
                backs.append(await _timed(console, "escape",
                                          lambda s=fleet_screen: console.screen is s))  # fmt: skip
                await pilot.press("slash", "ctrl+a", "ctrl+k")
                filters.append(await _timed(console, "enter",
                                            lambda s=fleet_screen: not s.filter_text))  # fmt: skip
            result["polls"] = console.frame.polls if console.frame else 0
            for name, times in (("move", moves), ("filter", filters), ("drill", drills),
                                ("move_in_service", inner), ("back", backs)):  # fmt: skip
                result[f"{name}_ms"] = [statistics.median(times), max(times)]
            await pilot.press("q")

    asyncio.run(scenario())
    return result


def cpu(url: str, seconds: float) -> dict[str, Any]:
    import pexpect

    env = {k: v for k, v in os.environ.items() if k not in ("CPX_URL", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli_devops", "top", "--cp-url", url, "--interval", str(INTERVAL)],
        env=env,
        dimensions=(SIZE[1], SIZE[0]),
        encoding="utf-8",
        timeout=120,
    )
    try:
        child.expect("instances in")
        before, started = cpu_seconds(child.pid), time.monotonic()
        child.expect(pexpect.TIMEOUT, timeout=seconds)  # reads the screen all the while
        used, wall = cpu_seconds(child.pid) - before, time.monotonic() - started
        peak = status_kib(child.pid, "VmHWM")
        child.send("q")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    return {"core_share": used / wall, "seconds": wall, "peak_rss_mib": peak / 1024,
            "exit": child.exitstatus}  # fmt: skip


def memory(size: int, polls: int, history: int = 30) -> dict[str, Any]:
    from cli_devops.health import Thresholds
    from cli_devops.model import Instance
    from cli_devops.top.source import FleetReading
    from cli_devops.top.state import FleetState

    rng = random.Random(size)
    services = [f"Service{n}" for n in range(20)]
    ips = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(1, size + 1)]
    owner = [services[n % len(services)] for n in range(size)]
    state = FleetState(
        "bench", interval=INTERVAL, thresholds=Thresholds(), min_healthy=2, history=history
    )
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rss: dict[int, float] = {}
    apply_ms = []
    for poll in range(1, polls + 1):
        members = [
            Instance(ip, service, float(rng.randint(0, 100)), float(rng.randint(0, 100)))
            for ip, service in zip(ips, owner)
        ]
        began = time.perf_counter()
        state.apply(
            FleetReading(start + timedelta(seconds=poll * INTERVAL), members), poll * INTERVAL
        )
        state.frame(poll * INTERVAL)
        apply_ms.append((time.perf_counter() - began) * 1000)
        if poll in (polls // 4, polls):
            del members
            gc.collect()
            rss[poll] = status_kib(os.getpid(), "VmRSS") / 1024
    quarter, full = rss[polls // 4], rss[polls]
    return {"rss_mib": [quarter, full], "polls": [polls // 4, polls], "history": history,
            "poll_work_ms": statistics.median(apply_ms)}  # fmt: skip


TOP_KEYS = (
    ("move", "move the cursor"),
    ("filter", "apply or clear a filter"),
    ("drill", "drill into the largest service"),
    ("move_in_service", "move in that service"),
    ("back", "back to the fleet"),
)


def top_measure(*args: str) -> dict[str, Any]:
    from run import BenchError

    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"bench/top.py {args[0]}: {done.stderr[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def case_top(sizes: Sizes, cli: list[str]) -> list[Row]:
    """`top` at fleet scale: a key's effect on screen while polls run, the console's own CPU at
    a 5 s interval, and memory over a long run; for `bench/run.py`."""
    from run import Row, server, times, verdict

    case = "top console"
    keys = {}
    for size in (150, sizes.fleet):
        with server("--fleet", str(size), "--seed", "1") as serving:
            keys[size] = top_measure("keys", serving.url)
    small, large = keys[150], keys[sizes.fleet]
    rows = []
    for name, label in TOP_KEYS:
        median, worst = large[f"{name}_ms"]
        rows.append(
            Row(case, f"{label}, {sizes.fleet:,} instances (largest service "
                f"{large['largest_service']:,}): median (worst)",
                f"{median:.0f} ms ({worst:.0f})", f"{times(median / small[f'{name}_ms'][0])} "
                "150 instances", "< 100 ms", verdict(median < 100))
        )  # fmt: skip
    with server("--fleet", str(sizes.fleet), "--seed", "1") as serving:
        used = top_measure("cpu", serving.url, str(sizes.top_seconds))
    share = used["core_share"]
    rows.append(
        Row(case, f"own CPU at a 5 s interval, reads included, {sizes.fleet:,} instances, "
            f"{used['seconds']:.0f} s", f"{share:.0%} of a core", f"peak RSS "
            f"{used['peak_rss_mib']:.0f} MiB", "< 40%", verdict(share < 0.4))
    )  # fmt: skip
    memory = top_measure("memory", str(sizes.fleet), str(sizes.top_polls))
    early, late = memory["rss_mib"]
    first, last = memory["polls"]
    rows.append(
        Row(case, f"RSS after {first} and after {last} polls of {sizes.fleet:,} instances "
            "(--history 30)", f"{early:.0f} / {late:.0f} MiB", f"{times(late / early)}",
            "<= 1.1x", verdict(late / early <= 1.1))
    )  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    what, *args = argv
    if what == "keys":
        out = keys(args[0])
    elif what == "cpu":
        out = cpu(args[0], float(args[1]))
    elif what == "memory":
        out = memory(int(args[0]), int(args[1]))
    else:
        raise SystemExit(f"bench/top.py: unknown measure {what!r}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
