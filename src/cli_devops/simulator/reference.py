"""A replica of the reference server: single-threaded ``http.server``, HTTP/1.0, backlog 5.

It lets the client be tested against the behaviour it will really meet; the fleet it serves is
:meth:`Fleet.reference` (the reference server's IPs and its rule for the service of each).
"""

from __future__ import annotations

import collections
import http.server
import random
import socket
import socketserver
import sys
import time
from typing import Any

from cli_devops.serving import BackgroundServer, loopback_url
from cli_devops.simulator.fleet import INVALID_IP_BODY, Fleet, metrics_body


class _ReferenceHTTPServer(http.server.HTTPServer):
    """``HTTPServer`` as the reference runs it: one thread, backlog 5, dual-stack on ``::``."""

    request_queue_size = 5

    def __init__(self, host: str, port: int, fleet: Fleet) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.fleet = fleet
        self.rng = random.Random()
        self.request_paths: collections.Counter[str] = collections.Counter()
        super().__init__((host, port), _ReferenceHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a DNS timeout.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up mid-response (clients time out under load)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def respond(self, path: str) -> tuple[int, bytes]:
        if path == "/servers":
            return 200, self.fleet.servers_body()
        ip = path[1:] if path.startswith("/") else ""
        instance = self.fleet.instances.get(ip)
        if instance is None:
            return 400, INVALID_IP_BODY
        if instance.raw is not None or instance.status != 200:
            return self.fleet.instance_response(ip, time.time())
        cpu, memory = self.rng.randint(0, 100), self.rng.randint(0, 100)
        return 200, metrics_body(cpu, memory, instance.service)


class _ReferenceHandler(http.server.BaseHTTPRequestHandler):
    """GET only, no ``Content-Length``: HTTP/1.0 bodies end when the server closes."""

    timeout = 10.0

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _ReferenceHTTPServer)
        server.request_paths[self.path] += 1
        status, body = server.respond(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the reference's request log would drown test and benchmark output."""


class ReferenceServer:
    """Behaves like the challenge's reference server.

    Single-threaded ``http.server`` speaking HTTP/1.0 (one request per connection), listen
    backlog 5, IPv6 by default (``::``; an IPv4 literal host uses IPv4), the 150-instance
    :meth:`Fleet.reference` fleet, fresh random integer cpu/memory on every request, 400
    ``{"error": "Invalid IP"}`` for anything else. A request that stalls mid-way is dropped
    after 10 s so :meth:`stop` cannot hang on it forever.
    """

    def __init__(self, host: str = "::", port: int = 8080, fleet: Fleet | None = None) -> None:
        self.host = host
        self.port = port
        self.fleet = Fleet.reference() if fleet is None else fleet
        self.url = ""
        self.request_paths: collections.Counter[str] = collections.Counter()
        self._server: BackgroundServer | None = None

    def start(self) -> str:
        """Bind and serve in a background thread; returns the base URL (loopback of the family).

        Bind errors are raised here as :class:`OSError`.
        """
        if self._server is not None:
            raise RuntimeError("reference server already started")
        httpd = _ReferenceHTTPServer(self.host, self.port, self.fleet)
        httpd.request_paths = self.request_paths
        self._server = BackgroundServer(httpd, "cpx-reference-server", 0.05)
        self.port = self._server.port
        self.url = loopback_url(self.host, self.port)
        self._server.start()
        return self.url

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread. Idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; False once the server is no longer running."""
        if self._server is None or not self._server.is_alive():
            return False
        self._server.join(timeout)
        return True

    def __enter__(self) -> ReferenceServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
