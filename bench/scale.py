"""Case 6 of `run.py`: deadlines and scrape timeouts at a million instances.

* `--deadline D services -o json` against a fleet whose instances all hang (the tests' hostile
  server, `python -m tests.hostile --mode hang`): the wall time of the whole process over D,
  counted as a user counts it (from the process's start). Every instance must be listed, the
  unread ones as unknown. Target: at most 1 + 1/D (the deadline plus one second).
* One exporter scrape with `X-Prometheus-Scrape-Timeout-Seconds: T` (gzip accepted, as
  Prometheus asks), against a fleet that answers (`cli_devops simulate`) and one that hangs:
  the scrape's wall time over T. Target: at most 1, with `cpx_up 1` (never an empty answer).

    python bench/scale.py [--fleet 1000000] [--deadline 2] [--timeout 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


@contextmanager
def exporter(cli: list[str], url: str) -> Iterator[str]:
    """`cli_devops exporter` on a free loopback port, reading `url`; yields its /metrics URL."""
    process = subprocess.Popen(
        [*cli, "--cp-url", url, "exporter", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        found = re.search(r"http://\S+/metrics", process.stdout.readline())
        if not found:
            raise RuntimeError("the exporter did not start")
        yield found.group(0)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def scrape(metrics_url: str, timeout: float) -> tuple[float, bytes]:
    """One scrape as Prometheus sends it: its wall time (to the last byte) and the answer."""
    request = urllib.request.Request(
        metrics_url,
        headers={
            "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}",
            "Accept-Encoding": "gzip",
            "Accept": "text/plain;version=0.0.4",
        },
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout * 10) as answer:
        body = answer.read()
        gzipped = answer.headers.get("Content-Encoding") == "gzip"
    seconds = time.perf_counter() - started
    return seconds, gzip.decompress(body) if gzipped else body


def _samples(text: str, name: str) -> int:
    return len(re.findall(rf"^{name}[{{ ]", text, re.MULTILINE))


@dataclass(frozen=True)
class Scale:
    fleet: int = 1_000_000
    deadline: float = 2.0
    timeout: float = 5.0
    runs: int = 3


def case_scale(scale: Scale, cli: list[str], bench: ModuleType) -> list[object]:
    """Rows: the deadline case and the exporter scrapes, as ratios."""
    from stuck import hostile  # bench/stuck.py, next to this file

    fleet, deadline, runs = scale.fleet, scale.deadline, scale.runs
    rows: list[object] = []
    case = f"6. {fleet:,} instances"
    with hostile(fleet, "hang") as url:
        command = [*cli, "--cp-url", url, "--deadline", f"{deadline:g}", "services", "-o", "json"]
        variant = bench.Variant(f"--deadline {deadline:g} services -o json, all hung", command,
                                None, fleet)  # fmt: skip
        bench.take_turns([variant], runs)
        ratio = variant.seconds / deadline
        target = 1 + 1 / deadline
        rows.append(bench.Row(case, variant.name, bench.secs(variant.seconds),
                              f"{bench.times(ratio)} the deadline", f"<= {target:.2f}x",
                              bench.verdict(ratio <= target)))  # fmt: skip
        rows.append(_scrape_row(scale, "all hung", url, cli, bench))
    serving = bench.Server("--fleet", str(fleet))
    try:
        rows.append(_scrape_row(scale, "all answering", serving.url, cli, bench))
    finally:
        serving.stop()
    return rows


def _scrape_row(scale: Scale, fleet: str, url: str, cli: list[str], bench: ModuleType) -> object:
    case, timeout, runs = f"6. {scale.fleet:,} instances", scale.timeout, scale.runs
    times: list[float] = []
    read: list[int] = []
    try:
        serving = exporter(cli, url)
        metrics = serving.__enter__()
    except RuntimeError as err:
        raise bench.BenchError(str(err)) from None
    try:
        for _ in range(runs + 1):  # the first scrape teaches the exporter its answer cost
            seconds, body = scrape(metrics, timeout)
            text = body.decode()
            if not re.search(r"^cpx_up 1(\.0)?$", text, re.MULTILINE):
                raise bench.BenchError(f"exporter scrape of {fleet} fleet: cpx_up is not 1")
            times.append(seconds)
            read.append(_samples(text, "cpx_instance_scrape_success"))
    finally:
        serving.__exit__(None, None, None)
    print(f"  exporter, {fleet}: {' '.join(f'{t:.3f}' for t in times)} s, "
          f"instances in the answers {read}", file=sys.stderr, flush=True)  # fmt: skip
    worst = max(times[1:])
    median = statistics.median(times[1:])
    return bench.Row(case, f"exporter scrape, timeout {timeout:g} s, {fleet} "
                     f"({statistics.median(read[1:]):,.0f} instances in the answer)",
                     bench.secs(median), f"{bench.times(worst / timeout)} the timeout (worst)",
                     "<= 1x", bench.verdict(worst <= timeout))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--fleet", type=int, default=1_000_000)
    parser.add_argument("--deadline", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import run as bench  # bench/run.py, next to this file

    try:
        scale = Scale(args.fleet, args.deadline, args.timeout, args.runs)
        rows = case_scale(scale, bench.cli_command(), bench)
    except (bench.BenchError, RuntimeError) as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return 1
    print(bench.markdown(rows))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
