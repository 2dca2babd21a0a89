"""Helpers for exporter tests: scrape over real loopback HTTP, read samples, a gated CPX server,
and a real Prometheus scraping exporters."""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from cli_devops.simulator import Fleet

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def get(base_url: str, path: str = "/metrics", headers: dict[str, str] | None = None) -> Answer:
    """One GET on a fresh connection (what a scraper does), headers lower-cased."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def samples(text: str, *, openmetrics: bool = False) -> dict[SampleKey, float]:
    """Every sample of the CPX families, keyed by name and sorted labels."""
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    found: dict[SampleKey, float] = {}
    for family in parse(text):
        for sample in family.samples:
            if sample.name.startswith("cpx_"):
                key = (sample.name, tuple(sorted(sample.labels.items())))
                assert key not in found, f"duplicate sample {key}"
                found[key] = sample.value
    return found


def without_duration(found: dict[SampleKey, float]) -> dict[SampleKey, float]:
    """The samples that depend on the fleet only: no scrape duration, no build information."""
    varying = ("cpx_scrape_duration_seconds", "cpx_exporter_build_info")
    return {key: value for key, value in found.items() if key[0] not in varying}


def expected_samples(
    fleet: Fleet, *, cpu_threshold: float = 90, mem_threshold: float = 90
) -> dict[SampleKey, float]:
    """What the exporter must say about a drift-free fleet whose instances all answer."""
    found: dict[SampleKey, float] = {("cpx_up", ()): 1, ("cpx_scrape_unrequested_instances", ()): 0}
    services: dict[str, list[int]] = {}
    for ip, instance in fleet.instances.items():
        labels = (("cpx_service", instance.service), ("ip", ip))
        healthy = instance.cpu <= cpu_threshold and instance.memory <= mem_threshold
        found["cpx_instance_cpu_usage_ratio", labels] = instance.cpu / 100
        found["cpx_instance_memory_usage_ratio", labels] = instance.memory / 100
        found["cpx_instance_healthy", labels] = 1 if healthy else 0
        found["cpx_instance_scrape_success", (("ip", ip),)] = 1
        counts = services.setdefault(instance.service, [0, 0])
        counts[0] += 1
        counts[1] += healthy
    for service, (total, healthy_count) in services.items():
        found["cpx_service_instances", (("cpx_service", service),)] = total
        found["cpx_service_healthy_instances", (("cpx_service", service),)] = healthy_count
    return found


def wait_until(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll `condition` (bounded); fail saying what never happened."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class GatedCpx:
    """A CPX stand-in serving `fleet` that holds the requests `hold(path)` picks until `open()`.

    It lets a test put a scrape in a known state (waiting on CPX) without timing guesses.
    """

    def __init__(self, fleet: Fleet, hold: Callable[[str], bool]) -> None:
        self.fleet = fleet
        self.hold = hold
        self.gate = threading.Event()
        self.requests: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        gated = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with gated._lock:
                    gated.requests[self.path] += 1
                if gated.hold(self.path):
                    gated.gate.wait(60)
                if self.path == "/servers":
                    status, body = 200, gated.fleet.servers_body()
                else:
                    status, body = gated.fleet.instance_response(self.path[1:], time.time())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def open(self) -> None:
        self.gate.set()

    def __enter__(self) -> GatedCpx:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.open()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: these tests need the Debian package `prometheus` "
            "(sudo apt-get install prometheus, which brings promtool); .ci/run installs it",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def query(base: str, path: str, **params: str) -> object:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


class RunningPrometheus(NamedTuple):
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def poll(self, condition: Callable[[], bool], seen: object, limit: float = 60.0) -> None:
        """Wait until `condition()` holds (bounded); fail with `seen` and the log otherwise."""
        end = time.monotonic() + limit
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {self.process.returncode}:\n"
                    f"{self.log_path.read_text()}"
                )
            try:
                if condition():
                    return
            except (urllib.error.URLError, ConnectionError):
                pass  # not listening yet
            if time.monotonic() > end:
                pytest.fail(
                    f"Prometheus did not show what was expected within {limit:g}s; last seen "
                    f"{seen}\n{self.log_path.read_text()}"
                )
            time.sleep(0.25)


@contextlib.contextmanager
def running_prometheus(
    directory: Path,
    targets: Sequence[str],
    *,
    rule_files: Sequence[Path] = (),
    scrape_configs: str | None = None,
) -> Iterator[RunningPrometheus]:
    """A real Prometheus on a free loopback port scraping `targets` (host:port) every second as
    job `cpx` (or as the YAML `scrape_configs:` section given); its data lives in `directory`
    and is removed afterwards."""
    binary = tool("prometheus")
    port = free_port()
    rules = "".join(f"  - {json.dumps(str(path))}\n" for path in rule_files)
    listed = ", ".join(f'"{target}"' for target in targets)
    (directory / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + (
            scrape_configs
            or f"scrape_configs:\n  - job_name: cpx\n    static_configs:\n"
            f"      - targets: [{listed}]\n"
        )
    )
    log_path = directory / "prometheus.log"
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("w"))
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
        stack.callback(shutil.rmtree, directory / "data", ignore_errors=True)
        stack.callback(terminate, process)
        yield RunningPrometheus(f"http://127.0.0.1:{port}", process, log_path)


def terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


LOGFMT_PAIR = re.compile(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^ "=\\]*)(?: |$)')


def logfmt(line: str) -> dict[str, str]:
    """One logfmt line as a dict; fails the test unless the whole line is key=value pairs."""
    pairs: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = LOGFMT_PAIR.match(line, position)
        assert match, f"not logfmt at {position}: {line!r}"
        key, value = match.groups()
        pairs[key] = json.loads(value) if value.startswith('"') else value
        position = match.end()
    assert list(pairs)[:3] == ["ts", "level", "msg"], line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", pairs["ts"]), line
    return pairs


def log_events(stderr: str) -> list[dict[str, str]]:
    """Every line of the exporter's stderr as a logfmt event."""
    return [logfmt(line) for line in stderr.splitlines()]


def messages(stderr: str) -> list[str]:
    return [event["msg"] for event in log_events(stderr)]
