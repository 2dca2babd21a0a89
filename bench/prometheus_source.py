"""Benchmark `status` read from Prometheus against the same read from CPX; prints ratios.

    python bench/prometheus_source.py            # 100,000 instances, 4 shards, 3 runs each
    python bench/prometheus_source.py --quick    # 2,000 instances, 2 shards, 1 run (smoke test)

The simulator (`cli_devops simulate`), the exporter shards (`cli_devops exporter --shard K/N`)
and Prometheus each run in their own process. Once Prometheus holds every instance, the two
variants take turns, run after run, as whole processes:

* CPX: `cli_devops --cp-url SIMULATOR status -o json` (one request per instance);
* Prometheus: `cli_devops --cp-url COUNTER --prometheus-url PROMETHEUS status -o json`, where
  COUNTER is a listener in this process that counts every request it receives: the CPX
  requests the Prometheus read made.

Time is wall time, memory the child's own peak RSS (`ru_maxrss`). Prometheus scrapes itself
too, so its resident memory and head series are reported for the docs' sizing on paper.
Linux only (`os.wait4`). Needs the `prometheus` binary.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from run import (  # the sibling module: this script's directory is on sys.path
    BenchError,
    Row,
    Variant,
    cli_command,
    machine,
    markdown,
    server,
    take_turns,
    times,
)


class Counter:
    """A loopback listener that answers 404 to everything and counts what it was asked."""

    def __init__(self) -> None:
        self.requests = 0
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counter.requests += 1
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def exporter(cp_url: str, shard: str) -> Iterator[str]:
    """`cli_devops exporter` on a free port; yields its host:port."""
    command = [*cli_command(), "--cp-url", cp_url, "--timeout", "30", "exporter"]
    command += ["--listen", "127.0.0.1:0", "--shard", shard]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        found = re.search(r"http://(\S+)/metrics", process.stdout.readline())
        if not found:
            raise BenchError("exporter did not start")
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def prometheus(directory: Path, targets: list[str], interval: int) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise BenchError("prometheus is not installed (apt-get install prometheus)")
    port = free_port()
    listed = ", ".join(f'"{target}"' for target in targets)
    (directory / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {interval}s\n"
        f"  scrape_timeout: {max(interval - 5, interval * 0.8):g}s\n"
        "scrape_configs:\n"
        f"  - job_name: cpx\n    static_configs:\n      - targets: [{listed}]\n"
        f'  - job_name: prometheus\n    static_configs:\n      - targets: ["127.0.0.1:{port}"]\n'
    )
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(60)
        log.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scalar(base: str, promql: str) -> float | None:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            result = json.loads(response.read())["data"]["result"]
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


def wait_for(base: str, promql: str, expected: float, limit: float) -> None:
    end = time.monotonic() + limit
    while scalar(base, promql) != expected:
        if time.monotonic() > end:
            raise BenchError(f"Prometheus did not show {promql} == {expected} in {limit:g}s")
        time.sleep(1)


def services_of(output: str) -> dict[str, int]:
    return {row["service"]: row["instances"] for row in json.loads(output)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    args = parser.parse_args(argv)
    size, shards, runs, interval = (2_000, 2, 1, 10) if args.quick else (100_000, 4, 3, 60)
    print(f"cli_devops Prometheus source benchmark: {machine()}", flush=True)
    try:
        rows = measure(size, shards, runs, interval)
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return 1
    print(markdown(rows))
    return 0


def measure(size: int, shards: int, runs: int, interval: int) -> list[Row]:
    cli = cli_command()
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sim = stack.enter_context(server("--fleet", str(size), "--seed", "1"))
        targets = [
            stack.enter_context(exporter(sim.url, f"{index}/{shards}")) for index in range(shards)
        ]
        base = stack.enter_context(prometheus(directory, targets, interval))
        print(f"waiting for Prometheus to hold {size:,} instances ...", file=sys.stderr)
        wait_for(base, "count(cpx_instance_cpu_usage_ratio)", float(size), 10 * interval)
        wait_for(base, 'count(up{job="cpx"} == 1)', float(shards), 3 * interval)
        wait_for(base, 'count(up{job="prometheus"} == 1)', 1.0, 3 * interval)
        counter = Counter()
        stack.callback(counter.stop)
        cpx = Variant("CPX", [*cli, "--cp-url", sim.url, "status", "-o", "json"])
        prom = Variant(
            "Prometheus",
            [*cli, "--cp-url", counter.url, "--prometheus-url", base, "status", "-o", "json"],
        )
        take_turns([cpx, prom], runs)
        if services_of(cpx.runs[0].output).keys() != services_of(prom.runs[0].output).keys():
            raise BenchError("the two reads disagree on the services")
        total = sum(services_of(prom.runs[0].output).values())
        if total != size:
            raise BenchError(f"the Prometheus read counted {total} instances, not {size}")
        rss = scalar(base, 'process_resident_memory_bytes{job="prometheus"}') or 0.0
        series = scalar(base, "prometheus_tsdb_head_series") or 0.0
    case = f"status, {size:,} inst"
    return [
        Row(case, "from CPX: time", f"{cpx.seconds:.2f} s"),
        Row(case, "from Prometheus: time", f"{prom.seconds:.2f} s",
            f"{times(prom.seconds / cpx.seconds)} CPX"),
        Row(case, "from CPX: peak RSS", f"{cpx.rss_mib:.0f} MiB"),
        Row(case, "from Prometheus: peak RSS", f"{prom.rss_mib:.0f} MiB",
            f"{times(prom.rss_mib / cpx.rss_mib)} CPX"),
        Row(case, "CPX requests, direct read", f"{size + 1:,}"),
        Row(case, "CPX requests, Prometheus read", f"{counter.requests}", "", "0",
            "yes" if counter.requests == 0 else "NO"),
        Row(f"Prometheus, {shards} shards", "head series", f"{series:,.0f}"),
        Row(f"Prometheus, {shards} shards", "resident memory", f"{rss / 2**20:.0f} MiB",
            f"{rss / series / 1024:.1f} KiB/series" if series else ""),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
