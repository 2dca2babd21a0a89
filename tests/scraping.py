"""Helpers for exporter tests: scrape over real loopback HTTP, read samples, a gated CPX server."""

from __future__ import annotations

import collections
import http.client
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

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
    return {key: value for key, value in found.items() if key[0] != "cpx_scrape_duration_seconds"}


def expected_samples(
    fleet: Fleet, *, cpu_threshold: float = 90, mem_threshold: float = 90
) -> dict[SampleKey, float]:
    """What the exporter must say about a drift-free fleet whose instances all answer."""
    found: dict[SampleKey, float] = {("cpx_up", ()): 1}
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
