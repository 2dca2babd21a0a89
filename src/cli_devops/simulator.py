"""Stand-ins for the CPX API: a fast concurrent simulator and a replica of the reference server.

Both answer the two endpoints of the real API from a :class:`Fleet`:

* ``GET /servers`` -> 200, JSON list of instance IPs;
* ``GET /<ip>`` -> 200, ``{"cpu": "61%", "memory": "4%", "service": "UserService"}``;
* anything else -> 400 ``{"error": "Invalid IP"}``.

:class:`SimulatorServer` is the load-bearing one: tests and benchmarks drive it at thousands of
requests per second, so it speaks a deliberately small subset of HTTP/1.1 directly on
:class:`asyncio.Protocol`. :class:`ReferenceServer` reproduces the challenge's slow server
(single-threaded ``http.server``, HTTP/1.0, backlog 5) so the client can be tested against the
behaviour it will really meet. Only the standard library is used, to keep imports cheap.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import http.server
import json
import math
import random
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, TextIO

SERVICE_NAMES: tuple[str, ...] = (
    "IdService",
    "AuthService",
    "MLService",
    "StorageService",
    "TimeService",
    "GeoService",
    "TicketService",
    "RoleService",
    "PermissionsService",
    "UserService",
)

MAX_HEADER_BYTES = 16 * 1024
"""Largest request head (request line + headers) the simulator accepts before answering 431."""

_INVALID_IP_BODY = b'{"error": "Invalid IP"}'
_OVERLOAD = 90.0
_TAU = 2.0 * math.pi
_REFERENCE_SEED = 8080
_REFERENCE_SIZE = 150
_MAX_GENERATED = 256 * 256 * 254
_TWELVE_SHORTS = struct.Struct("<12H")


@dataclass
class SimInstance:
    """One simulated instance.

    ``cpu`` and ``memory`` are base percentages; with drift they are the centre of the wave.
    ``raw`` replaces the generated payload byte for byte (sent with ``status``), so tests can
    serve malformed JSON. A ``status`` other than 200 without ``raw`` sends
    ``{"error": "<reason phrase>"}``.
    """

    service: str
    cpu: float
    memory: float
    raw: bytes | None = None
    status: int = 200


class _Wave:
    """Deterministic movement of one metric: a slow sine plus a fast, small one as noise."""

    __slots__ = ("amplitude", "noise_amplitude", "noise_period", "noise_phase", "period", "phase")

    def __init__(self, fractions: tuple[float, ...]) -> None:
        """Scale six fractions in [0, 1] into the wave's shape."""
        self.amplitude = 2.0 + 6.0 * fractions[0]
        self.period = 20.0 + 100.0 * fractions[1]
        self.phase = _TAU * fractions[2]
        self.noise_amplitude = 0.5 + 1.5 * fractions[3]
        self.noise_period = 3.0 + 6.0 * fractions[4]
        self.noise_phase = _TAU * fractions[5]

    def value(self, base: float, now: float) -> float:
        """Integer percentage at ``now``; an overloaded base (> 90) never drifts out of overload."""
        value = (
            base
            + self.amplitude * math.sin(_TAU * now / self.period + self.phase)
            + self.noise_amplitude * math.sin(_TAU * now / self.noise_period + self.noise_phase)
        )
        if base > _OVERLOAD:
            value = max(value, _OVERLOAD + 1.0)
        return float(round(min(100.0, max(0.0, value))))


def _percent(value: float) -> str:
    """Format like the API: ``61%`` for whole numbers, ``61.5%`` otherwise (round-trips)."""
    if math.isfinite(value) and value == int(value):
        return f"{int(value)}%"
    return f"{float(value)!r}%"


@functools.lru_cache(maxsize=4096)
def _json_string(text: str) -> str:
    return json.dumps(text)


def _metrics_body(cpu: float, memory: float, service: str) -> bytes:
    return (
        f'{{"cpu": "{_percent(cpu)}", "memory": "{_percent(memory)}", '
        f'"service": {_json_string(service)}}}'
    ).encode()


def _error_body(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Simulated error"
    return json.dumps({"error": phrase}).encode()


def _generated_ip(index: int) -> str:
    """The ``index``-th address of 10.0.0.0/8, skipping host parts .0 and .255."""
    rest, host = divmod(index, 254)
    second, third = divmod(rest, 256)
    return f"10.{second}.{third}.{host + 1}"


def _service_labels(size: int, rng: random.Random) -> list[str]:
    """Service of each instance, skewed: from 20 instances on, one service runs on exactly one
    instance and another on exactly two, so under-replication always shows up."""
    order = list(SERVICE_NAMES)
    rng.shuffle(order)
    if size < 20:
        labels = [order[i % len(order)] for i in range(size)]
    else:
        single, double, others = order[0], order[1], order[2:]
        labels = [single, double, double]
        remaining = size - len(labels)
        floor = min(3, remaining // len(others))
        for service in others:
            labels.extend([service] * floor)
        weights = [rng.uniform(0.2, 1.0) ** 3 for _ in others]
        labels.extend(rng.choices(others, weights=weights, k=remaining - floor * len(others)))
    rng.shuffle(labels)
    return labels


class Fleet:
    """The simulated fleet: which IPs exist, their service, and their cpu/memory over time.

    Thread-safe enough for a server thread plus a test thread: the servers only read
    ``instances`` and ``junk_servers``, and tests mutate them with plain assignments between
    requests. ``junk_servers`` holds extra JSON values appended verbatim to ``/servers`` (path
    traversal strings, host names, numbers, null) so tests can check a client never requests
    them. With ``drift`` the metrics move deterministically (from ``seed`` and the IP) over time.
    """

    def __init__(
        self,
        instances: dict[str, SimInstance] | None = None,
        *,
        drift: bool = False,
        seed: int = 0,
        junk_servers: list[object] | None = None,
    ) -> None:
        self.instances: dict[str, SimInstance] = {} if instances is None else instances
        self.junk_servers: list[object] = [] if junk_servers is None else junk_servers
        self.drift = drift
        self.seed = seed
        self.servers_override: bytes | None = None
        self._waves: dict[str, tuple[_Wave, _Wave]] = {}
        self._waves_seed = seed
        self._servers_keys: list[str] | None = None
        self._servers_body = b"[]"

    @classmethod
    def generate(cls, size: int = 150, seed: int | None = None) -> Fleet:
        """A realistic fleet of ``size`` instances with drift, deterministic for a given seed.

        IPs are allocated sequentially from 10.0.0.1 (host parts .0 and .255 skipped), so fleets
        of 100,000+ instances work. Services follow :func:`_service_labels`. Base cpu/memory are
        whole percentages, mostly 10-70, with about 5% of instances overloaded (cpu, memory or
        both above 90). ``seed=None`` picks a random seed, kept in ``fleet.seed`` so a run can be
        reproduced.
        """
        if not 0 <= size <= _MAX_GENERATED:
            raise ValueError(f"fleet size must be between 0 and {_MAX_GENERATED}, got {size}")
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        rng = random.Random(seed)
        labels = _service_labels(size, rng)
        overloaded_count = max(1, round(size * 0.05)) if size >= 20 else round(size * 0.05)
        overloaded = set(rng.sample(range(size), overloaded_count))
        instances: dict[str, SimInstance] = {}
        for index, service in enumerate(labels):
            cpu = float(rng.randint(10, 70))
            memory = float(rng.randint(10, 70))
            if index in overloaded:
                which = rng.random()
                if which < 0.8:
                    cpu = float(rng.randint(91, 99))
                if which >= 0.5:
                    memory = float(rng.randint(91, 99))
            instances[_generated_ip(index)] = SimInstance(service, cpu, memory)
        return cls(instances, drift=True, seed=seed)

    @classmethod
    def reference(cls) -> Fleet:
        """The reference server's fleet: 150 instances 10.58.1.1 .. 10.58.1.150.

        Services are assigned by a fixed-seed random choice (uneven counts, like a real fleet)
        and the base values are fixed too; :class:`ReferenceServer` ignores them and reports
        fresh random values per request, as the reference does.
        """
        rng = random.Random(_REFERENCE_SEED)
        instances = {
            f"10.58.1.{n}": SimInstance(
                rng.choice(SERVICE_NAMES), float(rng.randint(0, 100)), float(rng.randint(0, 100))
            )
            for n in range(1, _REFERENCE_SIZE + 1)
        }
        return cls(instances, drift=False, seed=_REFERENCE_SEED)

    def servers_body(self) -> bytes:
        """JSON list of the IPs (insertion order) followed by ``junk_servers``.

        ``servers_override``, when a test sets it, is answered verbatim instead (malformed lists).

        The encoded list is cached and rebuilt only when the keys change; comparing key lists is
        far cheaper than encoding them again on every request.
        """
        if self.servers_override is not None:
            return self.servers_override
        keys = list(self.instances)
        if keys != self._servers_keys:
            self._servers_body = json.dumps(keys).encode()
            self._servers_keys = keys
        if self.junk_servers:
            return json.dumps([*keys, *self.junk_servers]).encode()
        return self._servers_body

    def instance_response(self, ip: str, now: float) -> tuple[int, bytes]:
        """``(status, body)`` for ``GET /<ip>`` at wall-clock time ``now``.

        Unknown IPs get ``(400, {"error": "Invalid IP"})``. Without drift the base values are
        reported exactly; with drift they are integers following :class:`_Wave`, so the same
        ``now`` always gives the same answer (see :meth:`snapshot`).
        """
        instance = self.instances.get(ip)
        if instance is None:
            return 400, _INVALID_IP_BODY
        if instance.raw is not None:
            return instance.status, instance.raw
        if instance.status != 200:
            return instance.status, _error_body(instance.status)
        cpu, memory = self._metrics(ip, instance, now)
        return 200, _metrics_body(cpu, memory, instance.service)

    def snapshot(self, now: float) -> dict[str, tuple[str, float, float]]:
        """``ip -> (service, cpu, memory)`` exactly as reported at ``now``.

        Instances with a ``raw`` or non-200 ``status`` override report no metrics and are left
        out, so the result is the truth a client should display.
        """
        return {
            ip: (instance.service, *self._metrics(ip, instance, now))
            for ip, instance in list(self.instances.items())
            if instance.raw is None and instance.status == 200
        }

    def _metrics(self, ip: str, instance: SimInstance, now: float) -> tuple[float, float]:
        if not self.drift:
            return instance.cpu, instance.memory
        if self._waves_seed != self.seed:
            self._waves = {}
            self._waves_seed = self.seed
        waves = self._waves.get(ip)
        if waves is None:
            digest = hashlib.blake2b(f"{self.seed}/{ip}".encode(), digest_size=24).digest()
            fractions = tuple(part / 65535 for part in _TWELVE_SHORTS.unpack(digest))
            waves = self._waves.setdefault(ip, (_Wave(fractions[:6]), _Wave(fractions[6:])))
        return waves[0].value(instance.cpu, now), waves[1].value(instance.memory, now)


def _display_url(host: str, port: int) -> str:
    """Base URL a client on this machine can use; wildcard hosts map to their loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}


class _DateHeader:
    """``Date:`` header line, formatted at most once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
            self._second = second
        return self._line


class _BadRequest(Exception):
    """A request the connection cannot continue after; carries the status to answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _HttpProtocol(asyncio.Protocol):
    """One client connection of :class:`SimulatorServer`.

    Parses just enough HTTP/1.x: the request line, ``Connection``, ``Content-Length`` (the body
    is skipped) and ``Transfer-Encoding`` (refused). Pipelined requests are answered in order;
    responses produced by one read are written with a single ``write``.
    """

    def __init__(self, server: SimulatorServer) -> None:
        self._server = server
        self._loop = server._loop_or_raise()
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._skip = 0
        self._closing = False
        self._pending: deque[tuple[float, bytes, bool]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._connections.add(self)
        self._server.connections_opened += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        self._closing = True
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        buffer = self._buffer + data if self._buffer else data
        responses: list[tuple[bytes, bool]] = []
        while buffer:
            if self._skip:
                skipped = min(self._skip, len(buffer))
                self._skip -= skipped
                buffer = buffer[skipped:]
                continue
            if buffer[:2] == b"\r\n":
                buffer = buffer.lstrip(b"\r\n")
                continue
            end = buffer.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEADER_BYTES:
                if end > MAX_HEADER_BYTES or len(buffer) > MAX_HEADER_BYTES:
                    responses.append((self._error(431), False))
                    buffer = b""
                break
            head = buffer[:end]
            buffer = buffer[end + 4 :]
            try:
                response, keep_alive = self._handle(head)
            except _BadRequest as bad:
                response, keep_alive = self._error(bad.status), False
            responses.append((response, keep_alive))
            if not keep_alive:
                buffer = b""
                break
        self._buffer = buffer
        if responses:
            self._send(responses)

    def _send(self, responses: list[tuple[bytes, bool]]) -> None:
        keep_alive = responses[-1][1]
        if not keep_alive:
            self._closing = True
        payload = b"".join(response for response, _ in responses)
        delay = self._server.latency_ms / 1000.0
        if delay > 0:
            self._pending.append((self._loop.time() + delay, payload, keep_alive))
            if self._timer is None:
                self._timer = self._loop.call_at(self._pending[0][0], self._flush)
            return
        self._write(payload, keep_alive)

    def _flush(self) -> None:
        self._timer = None
        now = self._loop.time()
        while self._pending and self._pending[0][0] <= now:
            _, payload, keep_alive = self._pending.popleft()
            self._write(payload, keep_alive)
        if self._pending:
            self._timer = self._loop.call_at(self._pending[0][0], self._flush)

    def _write(self, payload: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(payload)
        if not keep_alive:
            transport.close()

    def _handle(self, head: bytes) -> tuple[bytes, bool]:
        line_end = head.find(b"\r\n")
        request_line = head if line_end < 0 else head[:line_end]
        parts = request_line.split(b" ")
        if len(parts) != 3:
            raise _BadRequest(400)
        method, target, version = parts
        if version == b"HTTP/1.1":
            http10 = False
        elif version == b"HTTP/1.0":
            http10 = True
        elif version.startswith(b"HTTP/"):
            raise _BadRequest(505)
        else:
            raise _BadRequest(400)
        keep_alive = not http10
        if line_end >= 0:
            keep_alive = self._read_headers(head[line_end + 2 :], keep_alive)
        path = target.decode("latin-1")
        self._server.request_paths[path] += 1
        return self._respond(method, target, path, http10, keep_alive), keep_alive

    def _respond(
        self, method: bytes, target: bytes, path: str, http10: bool, keep_alive: bool
    ) -> bytes:
        server = self._server
        now = time.time()
        if method not in (b"GET", b"HEAD"):
            status, body = 405, _error_body(405)
        elif target == b"/servers":
            status, body = 200, server.fleet.servers_body()
        elif target[:1] == b"/":
            status, body = server.fleet.instance_response(path[1:], now)
        else:
            status, body = 400, _INVALID_IP_BODY
        if http10 and keep_alive:
            connection = b"Connection: keep-alive\r\n"
        elif keep_alive:
            connection = b""
        else:
            connection = b"Connection: close\r\n"
        return b"".join(
            (
                _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode(),
                b"Server: cpx-simulator\r\n",
                server._date.line(now),
                b"Content-Type: application/json\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n",
                b"Allow: GET, HEAD\r\n" if status == 405 else b"",
                connection,
                b"\r\n",
                b"" if method == b"HEAD" else body,
            )
        )

    def _read_headers(self, block: bytes, keep_alive: bool) -> bool:
        """Apply the headers that matter; returns whether the connection stays open."""
        for line in block.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon:
                raise _BadRequest(400)
            name = name.lower()
            if name == b"connection":
                tokens = [token.strip() for token in value.lower().split(b",")]
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise _BadRequest(400) from None
                if length < 0:
                    raise _BadRequest(400)
                self._skip += length
            elif name == b"transfer-encoding":
                raise _BadRequest(501)
        return keep_alive

    def _error(self, status: int) -> bytes:
        body = _error_body(status)
        return b"".join(
            (
                _STATUS_LINES[status],
                b"Server: cpx-simulator\r\nContent-Type: application/json\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\nConnection: close\r\n\r\n",
                body,
            )
        )


class SimulatorServer:
    """The concurrent simulator: HTTP/1.1 keep-alive, many connections, one asyncio loop.

    The loop runs in a background thread so tests and benchmarks can drive it from the main
    thread. ``latency_ms`` delays every response on the loop's timers, never blocking other
    connections. ``request_paths`` counts every request target received, so tests can assert a
    client never asked for a junk entry.
    """

    def __init__(
        self,
        fleet: Fleet,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
    ) -> None:
        self.fleet = fleet
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.url = ""
        self.request_paths: collections.Counter[str] = collections.Counter()
        self.connections_opened = 0
        """Connections accepted so far, so tests can tell whether a client reuses them."""
        self._date = _DateHeader()
        self._connections: set[_HttpProtocol] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("simulator is not running")
        return self._loop

    def start(self) -> str:
        """Start listening in a background thread; returns the base URL once connectable.

        Bind errors (e.g. port in use) are raised here as :class:`OSError`.
        """
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        failure: list[Exception] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(
                        lambda: _HttpProtocol(self), self.host, self.port, backlog=1024
                    )
                )
            except Exception as exc:
                failure.append(exc)
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
                with contextlib.suppress(asyncio.TimeoutError):
                    loop.run_until_complete(asyncio.wait_for(self._server.wait_closed(), 1.0))
            finally:
                loop.close()

        thread = threading.Thread(target=run, name="cpx-simulator", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            self._loop = None
            raise failure[0]
        self._thread = thread
        assert self._server is not None
        sockets = self._server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        self.url = _display_url(self.host, self.port)
        return self.url

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
        self._loop_or_raise().stop()

    def stop(self) -> None:
        """Close the listener and every open connection, then join the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._shutdown)
        thread.join()
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
            return 400, _INVALID_IP_BODY
        if instance.raw is not None or instance.status != 200:
            return self.fleet.instance_response(ip, time.time())
        cpu, memory = self.rng.randint(0, 100), self.rng.randint(0, 100)
        return 200, _metrics_body(cpu, memory, instance.service)


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
        self._httpd: _ReferenceHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind and serve in a background thread; returns the base URL (loopback of the family).

        Bind errors are raised here as :class:`OSError`.
        """
        if self._thread is not None:
            raise RuntimeError("reference server already started")
        httpd = _ReferenceHTTPServer(self.host, self.port, self.fleet)
        httpd.request_paths = self.request_paths
        self._httpd = httpd
        self.port = int(httpd.server_address[1])
        self.url = _display_url(self.host, self.port)
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cpx-reference-server",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ReferenceServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(  # noqa: PLR0913 -- one keyword per option of the simulate command
    *,
    host: str,
    port: int,
    fleet_size: int,
    seed: int | None,
    reference: bool,
    latency_ms: float,
    out: TextIO,
) -> None:
    """Run a server until Ctrl+C: the blocking core of ``cli_devops simulate``.

    Writes one line to ``out`` saying where it listens, then waits; KeyboardInterrupt stops the
    server cleanly and returns. With ``reference`` the fixed reference fleet is served, so
    ``fleet_size``, ``seed`` and ``latency_ms`` do not apply. Bind failures (port in use) raise
    :class:`OSError` for the caller to report.
    """
    server: SimulatorServer | ReferenceServer
    if reference:
        server = ReferenceServer(host, port)
        url = server.start()
        line = (
            f"CPX reference server listening on {url} "
            f"({len(server.fleet.instances)} instances, single-threaded HTTP/1.0)"
        )
        thread = server._thread
    else:
        fleet = Fleet.generate(fleet_size, seed)
        server = SimulatorServer(fleet, host, port, latency_ms=latency_ms)
        url = server.start()
        latency = f", {latency_ms:g} ms latency" if latency_ms > 0 else ""
        line = (
            f"CPX simulator listening on {url} "
            f"({len(fleet.instances)} instances, seed {fleet.seed}{latency}); "
            "press Ctrl+C to stop"
        )
        thread = server._thread
    try:
        out.write(line + "\n")
        out.flush()
        while thread is not None and thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
