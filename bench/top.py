"""`top` at fleet scale: key press latency, the console's own CPU, memory over a long run.

    python bench/top.py keys URL [URL...]   # key presses, headless, while polling every 5 s
    python bench/top.py cpu SECONDS RUN...  # `cli_devops top --interval 5`, one per RUN, at once
    python bench/top.py memory SIZE POLLS   # memory after POLLS polls of SIZE instances

A RUN is one URL, or URLs joined by `+`: every one a context of `top --all-contexts`.

Each prints one JSON object. `bench/run.py` runs them against `cli_devops simulate` (another
process) at 150 instances and at the fleet size and reports the ratios.

- keys: Textual's pilot presses a key and waits until the app is idle again (the key handled
  and the screen refreshed); milliseconds per press, median and worst, for moving the cursor,
  applying a filter, drilling into the largest service and going back. The console polls the
  API all the while, on its own thread, as it does for a user. With several URLs, each is a
  context of one console (`--all-contexts`).
- cpu: the console in a pseudo-terminal whose output is read all the while; the share of one
  core its process used (user + system, reads included) over SECONDS after the first poll, and
  its peak RSS. Several RUNs run side by side, measured over the same seconds, so a console
  over three contexts and one over a single context share the machine's load alike.
- memory: a `FleetState` fed POLLS synthetic polls, a frame built after each as the console
  does; the process's RSS after a quarter of the polls and after all of them. With --history
  30 every buffer is full after 30 polls; from twice that on, memory must stay flat.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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


def keys(*urls: str) -> dict[str, Any]:
    """With several URLs, one context each, as `top --all-contexts` shows them."""
    from cli_devops.environment import Environment
    from cli_devops.run_config import RunConfig
    from cli_devops.settings import ClientSettings
    from cli_devops.top.command import TopOptions, prepare

    apps = [RunConfig(ClientSettings(base_url=url), env=Environment(color=True)) for url in urls]
    contexts = [(f"ctx{n}", app) for n, app in enumerate(apps)] if len(apps) > 1 else []
    console = prepare(apps[0], TopOptions(interval=INTERVAL), contexts=contexts).console
    result: dict[str, Any] = {}

    async def scenario() -> None:
        async with console.run_test(size=SIZE) as pilot:
            await _until(pilot, lambda: console.frame is not None and console.frame.services
                         and all(row.note is None for row in console.frame.services))  # fmt: skip
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


def _spawn_top(*args: str) -> Any:
    import pexpect

    env = {k: v for k, v in os.environ.items() if k not in ("CPX_URL", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    return pexpect.spawn(
        sys.executable,
        ["-m", "cli_devops", "top", "--interval", str(INTERVAL), *args],
        env=env,
        dimensions=(SIZE[1], SIZE[0]),
        encoding="utf-8",
        timeout=120,
    )


ANSI = re.compile(
    r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])"
)


def _read_screens(children: list[Any], seconds: float) -> list[int]:
    """Read what every console draws, for `seconds`; the last poll number each showed (with
    every context, the reads of all of them)."""
    import pexpect

    started = time.monotonic()
    polls = [0] * len(children)
    while time.monotonic() - started < seconds:
        for index, child in enumerate(children):
            with contextlib.suppress(pexpect.TIMEOUT):
                text = ANSI.sub("", child.read_nonblocking(1 << 16, timeout=0.05))
                for found in re.findall(r"· poll (\d+)", text):
                    polls[index] = max(polls[index], int(found))
    return polls


def cpu(seconds: float, *runs: list[str]) -> dict[str, Any]:
    """Each of `runs` (the global options of one `top`, `--all-contexts` among them for every
    context) in a terminal of its own, all at once, measured over the same SECONDS after each
    showed its first read."""
    import pexpect

    children = [_spawn_top(*args) for args in runs]
    try:
        for child in children:
            child.expect(r"instances in \d+ service")
        first = _read_screens(children, INTERVAL + 2)  # every context read at least once
        before = [cpu_seconds(child.pid) for child in children]
        started = time.monotonic()
        last = _read_screens(children, seconds)
        wall = time.monotonic() - started
        used = [cpu_seconds(child.pid) - was for child, was in zip(children, before, strict=False)]
        peaks = [status_kib(child.pid, "VmHWM") / 1024 for child in children]
        for child in children:
            child.send("q")
        for child in children:
            child.expect(pexpect.EOF, timeout=30)
    finally:
        for child in children:
            child.close(force=True)
    return {"core_share": [spent / wall for spent in used], "seconds": wall,
            "reads": [end - start for start, end in zip(first, last, strict=False)],
            "cpu_per_read": [spent / max(end - start, 1)
                             for spent, start, end in zip(used, first, last, strict=False)],
            "peak_rss_mib": peaks, "exit": [child.exitstatus for child in children]}  # fmt: skip


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
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rss: dict[int, float] = {}
    apply_ms = []
    for poll in range(1, polls + 1):
        members = [
            Instance(ip, service, float(rng.randint(0, 100)), float(rng.randint(0, 100)))
            for ip, service in zip(ips, owner, strict=False)
        ]
        began = time.perf_counter()
        moment = start + timedelta(seconds=poll * INTERVAL)
        state.apply(FleetReading(moment, members), poll * INTERVAL)
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
        used = top_measure("cpu", str(sizes.top_seconds), serving.url)
    share = used["core_share"][0]
    rows.append(
        Row(case, f"own CPU at a 5 s interval, reads included, {sizes.fleet:,} instances, "
            f"{used['seconds']:.0f} s", f"{share:.0%} of a core", f"peak RSS "
            f"{used['peak_rss_mib'][0]:.0f} MiB", "< 40%", verdict(share < 0.4))
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


def _top_args(run: str) -> list[str]:
    """The global options of a `top` over `run`: one URL, or URLs joined by `+`, one context
    each in a config file of their own (`--all-contexts`)."""
    urls = run.split("+")
    if len(urls) == 1:
        return ["--cp-url", urls[0]]
    fd, path = tempfile.mkstemp(suffix=".toml", prefix="bench-contexts-")
    with os.fdopen(fd, "w") as out:
        for n, url in enumerate(urls):
            out.write(f'[contexts.ctx{n}]\ncp-url = "{url}"\n\n')
    atexit.register(os.unlink, path)
    return ["--config", path, "--all-contexts"]


def case_top_contexts(sizes: Sizes, cli: list[str]) -> list[Row]:
    """`top --all-contexts` over three fleets of the fleet size, beside `top` over one: a key's
    effect on screen, and the CPU of the two consoles run side by side, for `bench/run.py`."""
    from run import Row, server, times, verdict

    case = "top, every context"
    size = sizes.fleet
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(server("--fleet", str(size), "--seed", str(seed))).url
                for seed in (1, 2, 3)]  # fmt: skip
        one = top_measure("keys", urls[0])
        three = top_measure("keys", *urls)
        used = top_measure("cpu", str(sizes.top_seconds), urls[0], "+".join(urls))
    rows = []
    for name, label in TOP_KEYS:
        median, worst = three[f"{name}_ms"]
        rows.append(
            Row(case, f"{label}, 3 contexts of {size:,} instances: median (worst)",
                f"{median:.0f} ms ({worst:.0f})",
                f"{times(median / one[f'{name}_ms'][0])} one context", "< 100 ms",
                verdict(median < 100))
        )  # fmt: skip
    single, joined = used["core_share"]
    reads_one, reads_three = used["reads"]
    per_one, per_three = used["cpu_per_read"]
    rows += [
        Row(case, f"own CPU at a 5 s interval, 3 contexts of {size:,} instances, side by side "
            f"with one context, {used['seconds']:.0f} s", f"{joined:.0%} of a core",
            f"{times(joined / single)} one context ({single:.0%})", "<= 3.3x",
            verdict(joined / single <= 3.3)),
        Row(case, f"CPU per read of one {size:,}-instance context in those seconds "
            f"({reads_three} reads of 3 contexts, {reads_one} of one)", f"{per_three:.2f} s",
            f"{times(per_three / per_one)} one context ({per_one:.2f} s)", "", ""),
    ]  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    what, *args = argv
    if what == "keys":
        out = keys(*args)
    elif what == "cpu":  # SECONDS, then one URL per `top` (several: every context, a+b+c)
        out = cpu(float(args[0]), *(_top_args(run) for run in args[1:]))
    elif what == "memory":
        out = memory(int(args[0]), int(args[1]))
    else:
        raise SystemExit(f"bench/top.py: unknown measure {what!r}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
