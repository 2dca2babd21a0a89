"""Benchmark cli_devops at fleet scale against the bundled simulator; prints ratios side by side.

    python bench/run.py            # full sizes, medians of 3 (about 6 minutes)
    python bench/run.py --quick    # small sizes, one run each: a smoke test (about 20 seconds)

Every figure is a whole process: the installed `cli_devops` (or `python -m cli_devops`) run as
a user runs it, against `cli_devops simulate` running in another process (so the two never share
an interpreter lock), output written to a file. Peak RSS is the child's own `ru_maxrss`. The
variants of a case take turns, run after run, so a noisy neighbour hurts them alike.

1. 10,000 instances, 20 ms latency: cli_devops `-o json` and the default table vs the original
   approach (5 threads, a new connection per request) vs the floor N*L/C.
2. 1,000 and 100,000 instances, 0 ms: requests per second and peak RSS.
   Simulator capacity: `wrk` (one thread per CPU, 128 connections, the client's headers, 5 s)
   saturates `cli_devops simulate --fleet 1000` with 1 worker and with `--workers` = CPU count;
   the better rate must be >= 10x cli_devops's fastest rate in case 2 (skipped without wrk).
3. The reference-like server (single-threaded HTTP/1.0, listen backlog 5), 150 instances:
   cli_devops default vs fixed concurrency 1, 5 and 64 vs a sequential standard-library client.
4. Start-up: `cli_devops --version` and `--help` vs `python -c pass`, and each command's
   `--help` vs the top-level one.

5. Stuck fleets (`stuck.py`): 150 instances that all hang, and 150 that all answer 429 with
   `Retry-After`: the default adaptive limit vs a fixed `--concurrency 64`.
6. A million instances (`scale.py`): `--deadline 2 services -o json` when every instance hangs,
   as wall time over the deadline (target 1 + 1/D), and one exporter scrape with a 5 s timeout
   when they all hang and when they all answer, as wall time over the timeout (target 1).

Plus one redraw of `track`'s live view at the fleet size vs 150 instances (in-process, see
`live_tick.py`), the `top` console at the fleet size vs 150 instances (see `top.py`), and the
HTTP client choice (aiohttp vs httpx) when httpx is installed
(`.[bench]` extra).
Linux only (`os.wait4`, `/proc`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    fleet: int = 10_000
    latency_ms: float = 20.0
    small: int = 1_000
    large: int = 100_000
    runs: int = 3
    startup_runs: int = 20
    wrk_seconds: float = 5.0
    top_seconds: float = 60.0
    top_polls: int = 240
    stuck: int = 150
    scale: int = 1_000_000


FULL = Sizes()
QUICK = Sizes(
    fleet=300, latency_ms=5.0, small=200, large=2_000, runs=1, startup_runs=3, wrk_seconds=1.0,
    top_seconds=3.0, top_polls=20, stuck=40, scale=5_000,
)  # fmt: skip


class BenchError(Exception):
    pass


def cli_command() -> list[str]:
    """The installed console script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("cli_devops")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli_devops"]


class Server:
    """`cli_devops simulate ...` in its own process, on a free loopback port."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "cli_devops", "simulate", "--port", "0", *args]
        if "--reference" in args:
            command += ["--host", "127.0.0.1"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"http://\S+", line)
        if not found:
            self.stop()
            raise BenchError(f"simulator did not start: {line!r}")
        self.url = found.group(0).rstrip(")")

    def cpu_seconds(self) -> float:
        """CPU time the server process used so far (user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def server(*args: str) -> Iterator[Server]:
    running = Server(*args)
    try:
        yield running
    finally:
        running.stop()


class Run(NamedTuple):
    seconds: float
    rss_mib: float
    server_cpu: float
    output: str
    errors: str


def run_once(command: Sequence[str], serving: Server | None = None) -> Run:
    """Run a process to completion with stdout and stderr to files; time it, read its RSS."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        before = serving.cpu_seconds() if serving else 0.0
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        used = (serving.cpu_seconds() - before) if serving else 0.0
        out.seek(0)
        err.seek(0)
        run = Run(seconds, usage.ru_maxrss * 1024 / MIB, used, out.read(), err.read())
    if process.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {process.returncode}: {run.errors[-500:]}")
    return run


@dataclass
class Variant:
    name: str
    command: list[str]
    serving: Server | None = None
    expect: int | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def rss_mib(self) -> float:
        return max(run.rss_mib for run in self.runs)

    @property
    def server_busy(self) -> float:
        return statistics.median(run.server_cpu / run.seconds for run in self.runs)


def take_turns(variants: Sequence[Variant], runs: int) -> None:
    """Run every variant `runs` times, interleaved; check the first output of each."""
    for _ in range(runs):
        for variant in variants:
            run = run_once(variant.command, variant.serving)
            if not variant.runs and variant.expect is not None:
                check_output(variant, run.output)
            variant.runs.append(run)
    for variant in variants:
        runs_text = " ".join(f"{run.seconds:.3f}" for run in variant.runs)
        print(f"  {variant.name}: {runs_text} s", file=sys.stderr, flush=True)


def check_output(variant: Variant, output: str) -> None:
    """A run only counts when it printed every instance (a piped table: a header, then rows)."""
    text = output.strip()
    count = len(json.loads(text)) if text.startswith("[") else len(text.splitlines()) - 1
    if count != variant.expect:
        raise BenchError(f"{variant.name}: printed {count} instances, expected {variant.expect}")


class Row(NamedTuple):
    case: str
    measure: str
    value: str
    ratio: str = ""
    target: str = ""
    met: str = ""


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def times(ratio: float) -> str:
    return f"{ratio:.2f}x"


def case_throughput_at_latency(sizes: Sizes, cli: list[str]) -> list[Row]:
    n, latency = sizes.fleet, sizes.latency_ms
    case = f"1. {n:,} inst, {latency:g} ms"
    with server("--fleet", str(n), "--latency-ms", f"{latency:g}", "--seed", "1") as sim:
        base = [*cli, "--cp-url", sim.url, "services"]
        json_run = Variant("json", [*base, "-o", "json"], sim, n)
        table = Variant("table", base, sim, n)
        original = Variant(
            "original", [sys.executable, str(HERE / "baselines.py"), "original", sim.url], sim, n
        )
        take_turns([json_run, table, original], sizes.runs)
        debug = run_once([*cli, "--debug", "--cp-url", sim.url, "services", "-o", "json"], sim)
    used = re.search(
        r"in ([\d.]+)s, concurrency adaptive: limit peak (\d+), final \d+, "
        r"mean in flight ([\d.]+)",
        debug.errors,
    )
    if not used:
        raise BenchError("cli_devops --debug did not report the concurrency it used")
    fetch, peak, mean = float(used.group(1)), int(used.group(2)), float(used.group(3))
    work = n * latency / 1000
    ratio = original.seconds / json_run.seconds
    rows = [
        Row(case, "cli_devops -o json (default settings)", secs(json_run.seconds)),
        Row(case, "cli_devops table, piped to a file", secs(table.seconds),
            f"{times(table.seconds / json_run.seconds)} json", "<= 1.3x",
            verdict(table.seconds <= 1.3 * json_run.seconds)),
        Row(case, "original approach: 5 threads, new connection each", secs(original.seconds),
            f"{ratio:.1f}x slower than json", ">= 20x", verdict(ratio >= 20)),
    ]  # fmt: skip
    # The concurrency used is the mean number of requests in flight (Little's law: a client
    # holding C requests open against latency L reads N instances in N*L/C at best). The limit's
    # peak is only a ceiling the adaptive limit reaches on its way; it is shown, not judged.
    floor = work / mean
    rows.append(
        Row(case, f"floor N*L/C, C = mean in flight {mean:.0f}", secs(floor),
            f"json {times(json_run.seconds / floor)} floor", "<= 1.5x",
            verdict(json_run.seconds <= 1.5 * floor))
    )  # fmt: skip
    rows.append(
        Row(case, f"  the same with C = the limit's peak {peak}", secs(work / peak),
            f"json {times(json_run.seconds / (work / peak))} floor")
    )  # fmt: skip
    rows.append(
        Row(case, "  the requests alone (from --debug, one run)", secs(fetch),
            f"{times(fetch / (work / mean))} floor at C = {mean:.0f}")
    )  # fmt: skip
    return rows


def case_rate_and_memory(sizes: Sizes, cli: list[str]) -> tuple[list[Row], float]:
    """Rows of case 2, and cli_devops's fastest rate: requests/s past start-up, the better of
    the two fleet sizes."""
    rows: list[Row] = []
    case = "2. 0 ms"
    with (
        server("--fleet", "1", "--seed", "1") as one,
        server("--fleet", str(sizes.small), "--seed", "1") as small,
    ):
        empty = Variant("1 instance", [*cli, "--cp-url", one.url, "services", "-o", "json"], one)
        runs = max(sizes.runs, 5) if sizes.runs > 1 else 1
        variants = [empty, fleet_variant(cli, small, sizes.small)]
        take_turns(variants, runs)
        client_rate = past_startup_rate(variants[1], empty)
        rows.append(rate_row(case, variants[1], empty, target=8000))
        rows.extend(client_choice(small.url))
    with server("--fleet", str(sizes.large), "--seed", "1") as large:
        variant = fleet_variant(cli, large, sizes.large)
        take_turns([variant], sizes.runs)
        client_rate = max(client_rate, past_startup_rate(variant, empty))
        rows.append(rate_row(case, variant, empty, target=None))
        rows.append(
            Row(case, f"{sizes.large:,} instances: peak RSS", f"{variant.rss_mib:.0f} MiB",
                f"{variant.rss_mib / empty.rss_mib:.1f}x one instance's", "< 500 MiB",
                verdict(variant.rss_mib < 500))
        )  # fmt: skip
    return rows, client_rate


def fleet_variant(cli: list[str], serving: Server, n: int) -> Variant:
    return Variant(f"{n}", [*cli, "--cp-url", serving.url, "services", "-o", "json"], serving, n)


def past_startup_rate(variant: Variant, empty: Variant) -> float:
    """Requests per second past start-up: (N - 1) / (t(N) - t(1 instance))."""
    extra = max(variant.seconds - empty.seconds, 1e-9)
    return ((variant.expect or 0) - 1) / extra


def rate_row(case: str, variant: Variant, empty: Variant, target: int | None) -> Row:
    n = variant.expect or 0
    rate = past_startup_rate(variant, empty)
    whole = n / variant.seconds
    return Row(
        case,
        f"{n:,} instances: requests/s past start-up",
        f"{rate:,.0f}/s",
        f"{whole:,.0f}/s whole process; simulator {variant.server_busy:.0%} busy",
        f">= {target:,}/s" if target else "",
        verdict(rate >= target) if target else "",
    )


def client_choice(url: str) -> list[Row]:
    """aiohttp vs httpx on the same fleet (fetch only), when httpx is installed."""
    done = subprocess.run(
        [sys.executable, str(HERE / "clients.py"), url, "64"],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = dict(line.split() for line in done.stdout.splitlines())
    case = "client"
    if seconds.get("httpx", "-") == "-":
        return [Row(case, "httpx vs aiohttp", "skipped: pip install -e '.[bench]'")]
    aiohttp, httpx = float(seconds["aiohttp"]), float(seconds["httpx"])
    return [
        Row(case, "aiohttp fetch, 64 in flight (in-process)", secs(aiohttp)),
        Row(case, "httpx fetch, same program", secs(httpx), f"{httpx / aiohttp:.1f}x aiohttp"),
    ]


WRK_HEADERS = ("Accept: application/json", "Accept-Encoding: identity", "User-Agent: cli_devops")
"""The headers cli_devops sends, so wrk's requests cost the simulator what the client's do."""


def case_capacity(sizes: Sizes, client_rate: float) -> list[Row]:
    """The simulator saturated by wrk, with 1 worker and one per CPU, against the client's rate.

    The client cannot show the simulator's capacity: at its rate the simulator's loop wakes for
    each request. wrk (one thread per CPU, 128 keep-alive connections) asks for one valid
    instance over and over; every answer must be a 200.
    """
    case = "simulator capacity"
    if shutil.which("wrk") is None:
        return [Row(case, "requests/s under wrk", "skipped: install wrk (apt-get install wrk)")]
    cpus = os.cpu_count() or 1
    rates: dict[int, list[float]] = {1: [], cpus: []}
    for _ in range(sizes.runs):
        for workers, measured in rates.items():
            args = ("--fleet", str(sizes.small), "--seed", "1", "--workers", str(workers))
            with server(*args) as sim:
                measured.append(wrk_rate(f"{sim.url}/10.0.0.1", cpus, sizes.wrk_seconds))
    for workers, measured in rates.items():
        runs_text = " ".join(f"{rate:,.0f}" for rate in measured)
        print(f"  wrk, {workers} worker(s): {runs_text} /s", file=sys.stderr, flush=True)
    median = {workers: statistics.median(measured) for workers, measured in rates.items()}
    rows = [
        Row(case, f"wrk, {sizes.small:,} instances, {workers} worker{'s' if workers > 1 else ''}",
            f"{rate:,.0f}/s", f"{rate / client_rate:.1f}x cli_devops")
        for workers, rate in median.items()
    ]  # fmt: skip
    best = max(median.values()) / client_rate
    rows.append(
        Row(case, f"better of the two vs cli_devops's fastest ({client_rate:,.0f}/s, case 2)",
            times(best),
            "", ">= 10x", verdict(best >= 10))
    )  # fmt: skip
    return rows


def wrk_rate(url: str, threads: int, seconds: float) -> float:
    """Requests per second wrk reached against `url`; any non-200 answer or error fails."""
    headers = [arg for header in WRK_HEADERS for arg in ("-H", header)]
    command = ["wrk", f"-t{threads}", "-c128", f"-d{seconds:g}s", *headers, url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not rate:
        raise BenchError(f"wrk failed: {done.stdout[-500:]}{done.stderr[-500:]}")
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise BenchError(f"wrk saw failed requests: {done.stdout[-800:]}")
    return float(rate.group(1))


def case_reference(sizes: Sizes, cli: list[str]) -> list[Row]:
    case = "3. reference-like, 150"
    with server("--reference") as ref:
        base = [*cli, "--cp-url", ref.url, "services", "-o", "json"]
        default = Variant("cli_devops default (adaptive)", base, ref, 150)
        fixed = [
            Variant(f"cli_devops --concurrency {n}", [*cli, "--concurrency", str(n), *base[1:]],
                    ref, 150)
            for n in (1, 5, 64)
        ]  # fmt: skip
        sequential = Variant(
            "sequential client (standard library)",
            [sys.executable, str(HERE / "baselines.py"), "sequential", ref.url],
            ref,
            150,
        )
        take_turns([default, *fixed, sequential], sizes.runs)
    best = min(fixed, key=lambda variant: variant.seconds)
    ratio = default.seconds / best.seconds
    rows = [
        Row(case, default.name, secs(default.seconds), f"{times(ratio)} best fixed",
            "<= 1.3x", verdict(ratio <= 1.3)),
    ]  # fmt: skip
    rows += [
        Row(case, v.name, secs(v.seconds), f"{times(v.seconds / default.seconds)} default")
        for v in (*fixed, sequential)
    ]
    return rows


def case_startup(sizes: Sizes, cli: list[str]) -> list[Row]:
    case = "4. start-up"
    bare = Variant("python -c pass", [sys.executable, "-c", "pass"])
    version = Variant("cli_devops --version", [*cli, "--version"])
    helped = Variant("cli_devops --help", [*cli, "--help"])
    commands = [
        Variant(f"cli_devops {name} --help", [*cli, name, "--help"])
        for name in ("services", "track", "top", "exporter", "simulate", "config")
    ]
    take_turns([bare, version, helped, *commands], sizes.startup_runs)
    fast = version.seconds / bare.seconds
    ratio = helped.seconds / bare.seconds
    rows = [
        Row(case, bare.name, secs(bare.seconds)),
        Row(case, version.name, secs(version.seconds), f"{times(fast)} python -c pass",
            "<= 1.5x", verdict(fast <= 1.5)),
        Row(case, helped.name, secs(helped.seconds), f"{times(ratio)} python -c pass", "<= 5.5x",
            verdict(ratio <= 5.5)),
    ]  # fmt: skip
    for variant in commands:
        against = variant.seconds / helped.seconds
        ratio_text = f"{times(against)} cli_devops --help"
        rows.append(
            Row(case, variant.name, secs(variant.seconds), ratio_text, "<= 1.6x",
                verdict(against <= 1.6))
        )  # fmt: skip
    return rows


def case_live_view(sizes: Sizes, cli: list[str]) -> list[Row]:
    """One redraw of the live view: only the rows that fit are laid out, whatever the fleet."""
    done = subprocess.run(
        [sys.executable, str(HERE / "live_tick.py"), "150", str(sizes.fleet)],
        capture_output=True,
        text=True,
        check=True,
    )
    ms = {
        int(size): float(value)
        for size, value in (line.split() for line in done.stdout.splitlines())
    }
    small, large = ms[150], ms[sizes.fleet]
    case = "track live view"
    return [
        Row(case, "one redraw, 150 instances (80x40 terminal)", f"{small:.1f} ms"),
        Row(case, f"one redraw, {sizes.fleet:,} instances", f"{large:.1f} ms",
            f"{times(large / small)} 150 instances"),
    ]  # fmt: skip


def machine() -> str:
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def markdown(rows: Sequence[Row]) -> str:
    header = Row("case", "measure", "median", "ratio", "target", "met")
    lines = [header, Row(*("---" for _ in header)), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--runs", type=int, help="runs per figure (median); default 3")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = Sizes(**{**sizes.__dict__, "runs": args.runs})
    cli = cli_command()
    print(f"cli_devops benchmark{' (quick)' if args.quick else ''}: {machine()}", flush=True)
    rows: list[Row] = []
    try:
        for case in (case_startup, case_throughput_at_latency):
            rows += case(sizes, cli)
            print(f"  done: {case.__name__}", file=sys.stderr, flush=True)
        rate_rows, client_rate = case_rate_and_memory(sizes, cli)
        rows += rate_rows
        print("  done: case_rate_and_memory", file=sys.stderr, flush=True)
        rows += case_capacity(sizes, client_rate)
        print("  done: case_capacity", file=sys.stderr, flush=True)
        from top import case_top, case_top_contexts  # bench/top.py, next to this file

        for case in (case_reference, case_live_view, case_top, case_top_contexts):
            rows += case(sizes, cli)
            print(f"  done: {case.__name__}", file=sys.stderr, flush=True)
        from stuck import case_stuck_fleets  # bench/stuck.py, next to this script

        rows += case_stuck_fleets(sizes.stuck, sizes.runs, cli, sys.modules[__name__])
        from scale import Scale, case_scale  # bench/scale.py, next to this script

        scale = Scale(sizes.scale, deadline=2.0, timeout=5.0, runs=sizes.runs)
        rows += case_scale(scale, cli, sys.modules[__name__])
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return 1
    if args.quick:  # the targets are for the full sizes; a smoke run only has to run
        rows = [row._replace(met="-") if row.met else row for row in rows]
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
