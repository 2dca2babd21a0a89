"""The exporter's HTTP side: `/metrics`, `/-/healthy` (and `/healthz`) and a landing page,
behind the TLS and basic auth of a web configuration file, and the `exporter` command.

The HTTP server is the standard library's `ThreadingHTTPServer`: one thread per scrape is
plenty (the expensive part, the CPX read, runs on the reader's loop thread), it adds no
dependency, and unlike `prometheus_client.start_http_server` our handler sees the request's
`X-Prometheus-Scrape-Timeout-Seconds` header, from which the read's deadline is derived.
prometheus_client's `choose_encoder` picks OpenMetrics or the classic text format from the
`Accept` header. HEAD is answered like GET without the body; gzip is sent only to a scraper
that accepts it (`Accept-Encoding` with a q-value above 0).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import html
import platform
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Info, ProcessCollector
from prometheus_client.exposition import choose_encoder

from cli_devops import __version__
from cli_devops.errors import CannotListen, ExitStatus
from cli_devops.exporter.collector import (
    CpxCollector,
    Shard,
    parse_shard,
    scrape_context,
    scrape_deadline,
)
from cli_devops.exporter.events import EventLog
from cli_devops.exporter.listener import BoundedListener
from cli_devops.exporter.options import ServeOptions, parse_listen
from cli_devops.exporter.reader import ExporterStopping, FleetReader
from cli_devops.exporter.web_config import (
    BasicAuth,
    WebConfig,
    WebServerMixin,
    authorized,
    load_web_config,
)
from cli_devops.health import Thresholds
from cli_devops.lifecycle import ctrl_c_is_a_stop
from cli_devops.run_config import RunConfig, open_source
from cli_devops.serving import BackgroundServer, loopback_url, serve_until_stopped
from cli_devops.settings import DEFAULT_EXPORTER_LISTEN, DEFAULT_SHARD, ClientSettings

BUSY = b"too many scrapes in flight; try again later\n"


def address_text(host: str, port: int) -> str:
    """`HOST:PORT`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def where(host: str, port: int, url: str, path: str = "/metrics") -> str:
    """What the exporter listens on, as an operator reads it: the metrics URL, or for a
    wildcard address every interface with the port, and the URL that works from this machine."""
    family = {"0.0.0.0": "IPv4", "": "IPv4", "::": "IPv6"}.get(host)
    if family is None:
        return f"{url}{path}"
    return f"port {port} of every {family} interface ({url}{path} from this machine)"


def accepts_gzip(header: str) -> bool:
    """Whether `Accept-Encoding` accepts gzip: listed (or `*`) with a q-value above 0."""
    accepted = {"gzip": False, "*": False}
    for entry in header.split(","):
        name, _, params = entry.partition(";")
        name = name.strip().lower()
        if name not in accepted:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        accepted[name] = quality > 0
        if name == "gzip":
            return accepted["gzip"]
    return accepted["*"]


LANDING_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>CPX exporter</title></head>
<body>
<h1>CPX exporter</h1>
<p>Fleet health of the CPX API at <code>{cpx}</code>, shard {shard}, read at every scrape.</p>
<ul>
<li><a href="{path}">{path}</a>: Prometheus metrics</li>
<li><a href="/-/healthy">/-/healthy</a> (or /healthz): liveness</li>
</ul>
<p>cli_devops {version}</p>
</body>
</html>
"""


class _Server(BoundedListener, WebServerMixin, ThreadingHTTPServer):
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
        """A scraper that hung up mid-answer, or a scrape abandoned at shutdown, is not an
        error worth a traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, ExporterStopping)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cli_devops-exporter"
    sys_version = ""
    default_request_version = "HTTP/1.0"
    """A request line without a version (HTTP/0.9, or bytes that are no request) still gets a
    status line before an error, not a bare HTML page."""

    def handle_one_request(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        try:
            super().handle_one_request()
        finally:
            server.mark_busy(self.request, False)

    def parse_request(self) -> bool:
        """Headers read in full: from here the connection is busy, not idle."""
        parsed = super().parse_request()
        if parsed:
            server = self.server
            assert isinstance(server, _Server)
            server.mark_busy(self.request, True)
        return parsed

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        exporter = server.exporter
        if not authorized(self, exporter.auth):
            return
        parts = urlsplit(self.path)
        if parts.path == exporter.options.telemetry_path:
            self._metrics(exporter, parse_qs(parts.query).get("name[]", []))
        elif parts.path in ("/-/healthy", "/healthz"):
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif parts.path == "/":
            page = LANDING_PAGE.format(
                cpx=html.escape(exporter.settings.base_url),
                path=html.escape(exporter.options.telemetry_path),
                shard=exporter.shard,
                version=__version__,
            )
            self._send(200, "text/html; charset=utf-8", page.encode())
        else:
            hint = f"not found; see {exporter.options.telemetry_path}\n"
            self._send(404, "text/plain; charset=utf-8", hint.encode())

    def do_HEAD(self) -> None:
        """Like GET, headers only (Content-Length is the GET body's)."""
        self.do_GET()

    def _metrics(self, exporter: Exporter, names: list[str]) -> None:
        """The metrics, or only the families `name[]` asks for (as client_python's own
        exposition restricts them); 503 beyond `max_requests` scrapes in flight."""
        slots = exporter.slots
        if slots is not None and not slots.acquire(blocking=False):
            exporter.events.warn(
                "scrape refused", cause="too many scrapes in flight",
                client=self.address_string(), max_requests=exporter.options.max_requests,
            )  # fmt: skip
            self._send(503, "text/plain; charset=utf-8", BUSY)
            return
        try:
            self._answer_metrics(exporter, names)
        finally:
            if slots is not None:
                slots.release()

    def _answer_metrics(self, exporter: Exporter, names: list[str]) -> None:
        registry = exporter.registry.restricted_registry(names) if names else exporter.registry
        deadline = scrape_deadline(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        with scrape_context(deadline) as answer:
            try:
                body = encoder(registry)
            except ExporterStopping:
                self.close_connection = True  # abandoned: no answer rather than a false "down"
                return
            except Exception as err:  # one scrape's bug must not take the exporter down
                exporter.events.error("scrape failed", cause=f"{type(err).__name__}: {err}")
                exporter.log_traceback()
                self._send(500, "text/plain; charset=utf-8", b"internal error reading the fleet\n")
                return
        gzipped = accepts_gzip(self.headers.get("Accept-Encoding", ""))
        sent = gzip.compress(body, compresslevel=1) if gzipped else body  # level 1: much faster
        self._send(200, content_type, sent, gzipped=gzipped)
        answer.sent(exporter.reader.learn_answer_cost)

    def _send(self, status: int, content_type: str, body: bytes, *, gzipped: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        server = self.server
        assert isinstance(server, _Server)
        server.exporter.events.debug("request", client=self.address_string(), line=format % args)


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
        options: ServeOptions | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.options = options or ServeOptions()
        self.events = events or EventLog(None)
        """Where events go (none by default: tests and embedders see only what they ask)."""
        if settings.log is None and self.events.enabled("debug"):
            settings = dataclasses.replace(settings, log=self.events.debug)
        self.settings = settings
        self.web = WebConfig()
        """TLS and basic auth (plain HTTP, no auth by default); set before `start()`."""
        self.thresholds = thresholds or Thresholds()
        self.shard = shard or Shard()
        self.host, self.port = self.options.addresses[0]
        self.url = ""
        self.urls: list[str] = []
        """One base URL per listen address, in their order (`url` is the first)."""
        limit = self.options.max_requests
        self.slots = threading.BoundedSemaphore(limit) if limit else None
        self.reader = FleetReader(
            settings, open_source(RunConfig(settings)), self.shard, self.events
        )
        """Its `source` is the CPX API of `settings` unless set before `start()`."""
        self.registry = CollectorRegistry(auto_describe=True)  # name[] finds process_*
        self.registry.register(CpxCollector(self.reader.read, self.thresholds))
        if self.options.exporter_metrics:
            ProcessCollector(registry=self.registry)
        Info(
            "cpx_exporter_build", "The exporter's version and Python's.", registry=self.registry
        ).info({"version": __version__, "python_version": platform.python_version()})
        self._servers: list[BackgroundServer] = []

    @functools.cached_property
    def auth(self) -> BasicAuth | None:
        return BasicAuth(self.web.users) if self.web.users else None

    def log(self, line: str) -> None:
        """A debug line (only with --debug)."""
        if self.settings.log is not None:
            self.settings.log(line)

    def log_traceback(self) -> None:
        """The exception being handled, line by line as debug lines (only with --debug)."""
        if self.settings.log is not None:
            import traceback

            for line in traceback.format_exc().splitlines():
                self.settings.log(line)

    def start(self) -> str:
        """Bind every address, start the CPX client and the server threads; returns the first
        address's base URL.

        Bind errors (address in use, no such address) are raised here as OSError, with
        `failed_address` set to the address that failed; nothing is left listening.
        """
        if self._servers:
            raise RuntimeError("exporter already started")
        servers: list[BackgroundServer] = []
        for host, port in self.options.addresses:
            try:
                httpd = _Server((host, port), self)
            except OSError as err:
                for bound in servers:
                    bound.stop()
                err.failed_address = (host, port)  # type: ignore[attr-defined]
                raise
            servers.append(BackgroundServer(httpd, "cpx-exporter-http", 0.1))
        self.reader.start()
        self._servers = servers
        self.port = servers[0].port
        self.urls = [
            loopback_url(host, server.port, self.web.scheme)
            for (host, _), server in zip(self.options.addresses, servers, strict=False)
        ]
        self.url = self.urls[0]
        for server in servers:
            server.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the CPX client. Idempotent."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
        self.reader.stop()

    def __enter__(self) -> Exporter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_exporter(
    app: RunConfig,
    *,
    serve: ServeOptions | None = None,
    shard: str = DEFAULT_SHARD,
    web_config: str | None = None,
) -> ExitStatus:
    """`cli_devops exporter`: serve until SIGTERM or SIGHUP (a requested stop, exit 0) or
    Ctrl+C (exit 130); scrapes in flight are abandoned without an answer.

    `web_config` is a web configuration file (TLS, basic auth), read and checked before serving.
    Events (listening, stopping, scrape failures and their cause) go to stderr, one line each.
    """
    serve = serve or ServeOptions((parse_listen(DEFAULT_EXPORTER_LISTEN),))
    events = EventLog(app.env.stderr, "debug" if app.debug else serve.log_level, serve.log_format)
    settings = app.settings
    if app.debug:
        settings = dataclasses.replace(settings, log=None)  # debug lines become events
    exporter = Exporter(
        settings,
        thresholds=app.thresholds,
        shard=parse_shard(shard),
        options=serve,
        events=events,
    )
    exporter.reader.source = source = open_source(app)
    if web_config:
        exporter.web = load_web_config(Path(web_config))
    try:
        exporter.start()
    except OSError as err:
        host, port = getattr(err, "failed_address", exporter.options.addresses[0])
        raise CannotListen(address_text(host, port), err) from None
    path = exporter.options.telemetry_path
    places = []
    for (host, _), url in zip(exporter.options.addresses, exporter.urls, strict=False):
        port = urlsplit(url).port or 0
        places.append(where(host, port, url, path))
        events.info("listening", address=address_text(host, port), path=path)
    try:
        app.env.stdout.write(
            f"Serving CPX metrics on {' and on '.join(places)} "
            f"(shard {exporter.shard}, CPX API {source.name}); press Ctrl+C to stop\n"
        )
        app.env.stdout.flush()
        with ctrl_c_is_a_stop():  # exit 130
            serve_until_stopped()
    finally:
        events.info("stopping")
        exporter.stop()
    return ExitStatus.OK
