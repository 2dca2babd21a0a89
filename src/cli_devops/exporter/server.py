"""The Prometheus exporter: `/metrics` reads CPX at scrape time and answers in the text format.

Shape, following prometheus_client's custom-collector pattern:

* `CpxCollector` is registered on the exporter's own `CollectorRegistry` (next to a
  `ProcessCollector`) and builds every metric family fresh on each scrape, so an instance that
  vanished from CPX vanishes from the output; no gauge is ever set on a timer.
* `FleetReader` owns one asyncio loop thread with one open `CpxClient` (a warm connection pool
  across scrapes). A scrape that arrives while a read is in flight joins it instead of starting
  another, so Prometheus HA pairs and retries do not multiply the load on CPX.
* The HTTP server is the standard library's `ThreadingHTTPServer`: one thread per scrape is
  plenty (the expensive part, the CPX read, is shared and runs on the loop thread), it adds no
  dependency, and unlike `prometheus_client.start_http_server` our handler sees the request's
  `X-Prometheus-Scrape-Timeout-Seconds` header, from which the read's deadline is derived.
  prometheus_client's `choose_encoder` picks OpenMetrics or the classic text format from the
  `Accept` header.

prometheus_client is imported here only, and this module only by the `exporter` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gzip
import html
import ipaddress
import math
import platform
import socket
import socketserver
import sys
import threading
import traceback
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Info, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from cli_devops import __version__
from cli_devops.app import App
from cli_devops.client import CpxClient
from cli_devops.errors import ApiUnreachable, CannotListen, ExitStatus, UsageError
from cli_devops.exporter_web import (
    BasicAuth,
    WebConfig,
    WebServerMixin,
    authorized,
    load_web_config,
)
from cli_devops.health import Status, Thresholds, instance_status, summarize_services
from cli_devops.model import Instance
from cli_devops.serving import BackgroundServer, loopback_url, serve_until_stopped
from cli_devops.settings import DEFAULT_EXPORTER_LISTEN, DEFAULT_EXPORTER_PORT, ClientSettings

DEFAULT_PORT = DEFAULT_EXPORTER_PORT
DEFAULT_LISTEN = DEFAULT_EXPORTER_LISTEN

DEFAULT_SCRAPE_TIMEOUT = 10.0
"""Prometheus's own default scrape_timeout, used when a scrape does not send its timeout."""
MAX_SCRAPE_TIMEOUT = 300.0
DEADLINE_MARGIN = 0.5
"""Seconds kept back from the scrape timeout for encoding and sending the answer."""

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "cpx_scrape_deadline", default=None
)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the instances whose IP hashes to `index` (see `shard_of`)."""

    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, ip: str) -> bool:
        return self.count == 1 or shard_of(ip, self.count) == self.index


def shard_of(ip: str, count: int) -> int:
    """The shard of an IP: CRC-32 of its packed address bytes, modulo `count`.

    Stable across processes, machines and releases (unlike Python's salted `hash()`), and the
    same for every spelling of one address (`::1` and `0:0:0:0:0:0:0:1`).
    """
    return zlib.crc32(ipaddress.ip_address(ip).packed) % count


def parse_shard(text: str) -> Shard:
    """Read `K/N` with 0 <= K < N; raises UsageError otherwise."""
    index_text, slash, count_text = text.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index = count = -1
    if not slash or count < 1 or not 0 <= index < count:
        raise UsageError(f"invalid --shard {text!r}: expected K/N with 0 <= K < N, like 0/3")
    return Shard(index, count)


def parse_listen(text: str) -> tuple[str, int]:
    """Read `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every IPv4 interface); raises UsageError."""
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        colon = ""
    if not colon or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"invalid --listen {text!r}: expected HOST:PORT, like {DEFAULT_LISTEN}")
    return host or "0.0.0.0", int(port_text)


def scrape_deadline(timeout_header: str | None) -> float:
    """Seconds a scrape may spend reading CPX, from `X-Prometheus-Scrape-Timeout-Seconds`.

    A missing or unusable header means Prometheus's default of 10 s; a margin is kept back
    (0.5 s, or half of a timeout shorter than 1 s) so the answer still arrives in time.
    """
    timeout = DEFAULT_SCRAPE_TIMEOUT
    if timeout_header:
        try:
            value = float(timeout_header)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            timeout = min(value, MAX_SCRAPE_TIMEOUT)
    return max(timeout - DEADLINE_MARGIN, timeout / 2)


class Reading(NamedTuple):
    """One read of this exporter's share of the fleet. `up` is whether /servers was read."""

    up: bool
    instances: list[Instance]
    duration: float
    error: str | None = None


def build_metrics(reading: Reading, thresholds: Thresholds) -> list[Metric]:
    """The CPX metric families of one reading, built fresh (pure; no state between scrapes).

    Figures are ratios 0-1. `cpx_instance_healthy` is present for instances whose figures were
    read; an instance that could not be read shows only as `cpx_instance_scrape_success 0`.
    Service counts include every instance whose service is known, so they sum across shards.
    """
    up = GaugeMetricFamily("cpx_up", "1 if the CPX API's /servers was read in this scrape, else 0.")
    up.add_metric([], 1 if reading.up else 0)
    instance_labels = ["ip", "cpx_service"]
    cpu = GaugeMetricFamily(
        "cpx_instance_cpu_usage_ratio",
        "CPU usage of the instance as reported by CPX, 0-1.",
        labels=instance_labels,
    )
    memory = GaugeMetricFamily(
        "cpx_instance_memory_usage_ratio",
        "Memory usage of the instance as reported by CPX, 0-1.",
        labels=instance_labels,
    )
    healthy = GaugeMetricFamily(
        "cpx_instance_healthy",
        f"1 if the instance's CPU is at most {thresholds.cpu:g}% and its memory at most "
        f"{thresholds.memory:g}%, else 0.",
        labels=instance_labels,
    )
    success = GaugeMetricFamily(
        "cpx_instance_scrape_success",
        "1 if the instance's figures were read in this scrape, else 0.",
        labels=["ip"],
    )
    for instance in reading.instances:
        success.add_metric([instance.ip], 0 if instance.error else 1)
        if instance.service is None or instance.cpu is None or instance.memory is None:
            continue
        labels = [instance.ip, _label(instance.service)]
        cpu.add_metric(labels, instance.cpu / 100)
        memory.add_metric(labels, instance.memory / 100)
        is_healthy = instance_status(instance, thresholds) is Status.HEALTHY
        healthy.add_metric(labels, 1 if is_healthy else 0)
    service_total = GaugeMetricFamily(
        "cpx_service_instances",
        "Instances of the service (in this exporter's shard; sum across shards).",
        labels=["cpx_service"],
    )
    service_healthy = GaugeMetricFamily(
        "cpx_service_healthy_instances",
        "Healthy instances of the service (in this exporter's shard; sum across shards).",
        labels=["cpx_service"],
    )
    for summary in summarize_services(reading.instances, thresholds):
        service_total.add_metric([_label(summary.service)], summary.instances)
        service_healthy.add_metric([_label(summary.service)], summary.healthy)
    duration = GaugeMetricFamily(
        "cpx_scrape_duration_seconds", "Time this scrape spent reading the CPX API."
    )
    duration.add_metric([], reading.duration)
    return [up, cpu, memory, healthy, success, service_total, service_healthy, duration]


def _label(text: str) -> str:
    """A label value that can always be encoded (JSON may carry lone surrogates)."""
    return text.encode("utf-8", "replace").decode("utf-8")


class CpxCollector(Collector):
    """Reads CPX on every `collect()` and yields fresh families (the custom-collector protocol).

    The read's deadline comes from the scrape being answered (set by the HTTP handler in a
    context variable, since `collect()` takes no arguments), else the default.
    """

    def __init__(self, read: Callable[[float], Reading], thresholds: Thresholds) -> None:
        self._read = read
        self._thresholds = thresholds

    def collect(self) -> Iterable[Metric]:
        deadline = _deadline.get()
        return build_metrics(self._read(deadline or scrape_deadline(None)), self._thresholds)

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering does not read CPX."""
        return build_metrics(Reading(False, [], 0.0), self._thresholds)


class FleetReader:
    """One asyncio loop thread with an open `CpxClient`; `read()` is callable from any thread.

    Concurrent `read()` calls share the read in flight: the first starts it with its deadline,
    later ones wait for it up to their own deadline.
    """

    def __init__(
        self,
        settings: ClientSettings,
        shard: Shard | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.shard = shard or Shard()
        self._warn = warn
        self.reads_started = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: CpxClient | None = None
        self._inflight: asyncio.Task[Reading] | None = None
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Scrapes currently waiting for a read (the starter and those that joined it)."""
        return self._waiting

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="cpx-exporter-client", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        client = CpxClient(self.settings)
        asyncio.run_coroutine_threadsafe(client.__aenter__(), loop).result()
        self._client = client

    def stop(self) -> None:
        """Cancel a read in flight, close the client and the loop. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = None

    def read(self, deadline: float) -> Reading:
        """Read this shard of the fleet within `deadline` seconds (blocking)."""
        if self._loop is None:
            raise RuntimeError("FleetReader is not started")
        future = asyncio.run_coroutine_threadsafe(self._shared_read(deadline), self._loop)
        return future.result()

    async def _close(self) -> None:
        task = self._inflight
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def _shared_read(self, deadline: float) -> Reading:
        task = self._inflight
        self._waiting += 1
        try:
            if task is None or task.done():
                self.reads_started += 1
                task = self._inflight = asyncio.ensure_future(self._read(deadline))
                return await asyncio.shield(task)
            try:
                return await asyncio.wait_for(asyncio.shield(task), deadline)
            except asyncio.TimeoutError:
                reason = f"the CPX read in progress did not finish within {deadline:g}s"
                return Reading(False, [], deadline, reason)
        finally:
            self._waiting -= 1

    async def _read(self, deadline: float) -> Reading:
        assert self._client is not None, "FleetReader used before start()"
        client = self._client
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            listing = await client.servers(deadline=deadline)
        except ApiUnreachable as err:
            if self._warn is not None:
                self._warn(f"cpx_up 0: {err}")
            return Reading(False, [], loop.time() - started, str(err))
        instances = await client.instances([ip for ip in listing.ips if self.shard.owns(ip)])
        unread = sum(1 for instance in instances if instance.error is not None)
        if unread and self.settings.log is not None:
            self.settings.log(f"{unread} of {len(instances)} instances could not be read")
        return Reading(True, instances, loop.time() - started)


LANDING_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>CPX exporter</title></head>
<body>
<h1>CPX exporter</h1>
<p>Fleet health of the CPX API at <code>{cpx}</code>, shard {shard}, read at every scrape.</p>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/-/healthy">/-/healthy</a> (or /healthz): liveness</li>
</ul>
<p>cli_devops {version}</p>
</body>
</html>
"""


class _Server(WebServerMixin, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], exporter: Exporter) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.exporter = exporter
        self.web_tls = exporter.web.tls
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A scraper that hung up mid-answer is not an error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cli_devops-exporter"
    sys_version = ""
    timeout = 120.0

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        exporter = server.exporter
        if not authorized(self, exporter.auth):
            return
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics(exporter)
        elif path in ("/-/healthy", "/healthz"):
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif path == "/":
            page = LANDING_PAGE.format(
                cpx=html.escape(exporter.settings.base_url),
                shard=exporter.shard,
                version=__version__,
            )
            self._send(200, "text/html; charset=utf-8", page.encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found; see /metrics\n")

    def _metrics(self, exporter: Exporter) -> None:
        deadline = scrape_deadline(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        token = _deadline.set(deadline)
        try:
            body = encoder(exporter.registry)
        except Exception as err:  # one scrape's bug must not take the exporter down
            exporter.warn(f"/metrics failed: {type(err).__name__}: {err}")
            if exporter.settings.log is not None:
                traceback.print_exc()
            self._send(500, "text/plain; charset=utf-8", b"internal error reading the fleet\n")
            return
        finally:
            _deadline.reset(token)
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
        self._send(200, content_type, gzip.compress(body) if gzipped else body, gzipped=gzipped)

    def _send(self, status: int, content_type: str, body: bytes, *, gzipped: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        server = self.server
        assert isinstance(server, _Server)
        server.exporter.log(f"{self.address_string()} {format % args}")


class Exporter:
    """The exporter as an object: `start()` serves in background threads and returns its URL.

    `cli_devops exporter` runs one until Ctrl+C; tests run one in-process on port 0.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        thresholds: Thresholds | None = None,
        shard: Shard | None = None,
        address: tuple[str, int] = ("127.0.0.1", 0),
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.web = WebConfig()
        """TLS and basic auth (plain HTTP, no auth by default); set before `start()`."""
        self.thresholds = thresholds or Thresholds()
        self.shard = shard or Shard()
        self.host, self.port = address
        self.url = ""
        self._warn = warn
        self.reader = FleetReader(settings, self.shard, warn)
        self.registry = CollectorRegistry()
        self.registry.register(CpxCollector(self.reader.read, self.thresholds))
        ProcessCollector(registry=self.registry)
        Info(
            "cpx_exporter_build", "The exporter's version and Python's.", registry=self.registry
        ).info({"version": __version__, "python_version": platform.python_version()})
        self._server: BackgroundServer | None = None

    @functools.cached_property
    def auth(self) -> BasicAuth | None:
        return BasicAuth(self.web.users) if self.web.users else None

    def log(self, line: str) -> None:
        """A debug line (only with --debug)."""
        if self.settings.log is not None:
            self.settings.log(line)

    def warn(self, line: str) -> None:
        """A line an operator must see (stderr for the command)."""
        if self._warn is not None:
            self._warn(line)

    def start(self) -> str:
        """Bind, start the CPX client and the server threads; returns the base URL.

        Bind errors (address in use, no such address) are raised here as OSError.
        """
        if self._server is not None:
            raise RuntimeError("exporter already started")
        server = BackgroundServer(_Server((self.host, self.port), self), "cpx-exporter-http", 0.1)
        self.reader.start()
        self._server = server
        self.port = server.port
        self.url = loopback_url(self.host, self.port, self.web.scheme)
        server.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the CPX client. Idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.reader.stop()

    def __enter__(self) -> Exporter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_exporter(
    app: App, *, listen: str = DEFAULT_LISTEN, shard: str = "0/1", web_config: str | None = None
) -> ExitStatus:
    """`cli_devops exporter`: serve until Ctrl+C or SIGTERM (both a normal stop, exit 0).

    `web_config` is a web configuration file (TLS, basic auth), read and checked before serving.
    """
    exporter = Exporter(
        app.settings,
        thresholds=app.thresholds,
        shard=parse_shard(shard),
        address=parse_listen(listen),
        warn=app.env.warn,
    )
    if web_config:
        exporter.web = load_web_config(Path(web_config))
    try:
        url = exporter.start()
    except OSError as err:
        raise CannotListen(listen, err) from None
    try:
        app.env.stdout.write(
            f"Serving CPX metrics on {url}/metrics (shard {exporter.shard}, "
            f"CPX API {app.base_url}); press Ctrl+C to stop\n"
        )
        app.env.stdout.flush()
        serve_until_stopped()
    except KeyboardInterrupt:
        pass
    finally:
        exporter.stop()
    return ExitStatus.OK
