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

:class:`SimulatorServer` also injects faults for the resilience tests: a :class:`FaultPlan`
decides, from the request path and how many times that path was requested, whether to answer
normally or with a :class:`Fault` (an error status, a dropped connection, a truncated or
endless body, a stall, a redirect, raw bytes). :class:`Faults` is the seeded plan behind
``cli_devops simulate --fail-rate/--slow-rate/--chaos``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gzip
import hashlib
import http.server
import json
import math
import os
import random
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, NamedTuple, NoReturn, Protocol, TextIO
from urllib.parse import urlsplit

from cli_devops.serving import BackgroundServer, loopback_url, serve_until_stopped

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

    def value(self, base: float, turns: float) -> float:
        """Integer percentage at ``turns`` = 2 pi times the time; an overloaded base (> 90) never
        drifts out of overload."""
        value = (
            base
            + self.amplitude * math.sin(turns / self.period + self.phase)
            + self.noise_amplitude * math.sin(turns / self.noise_period + self.noise_phase)
        )
        if base > _OVERLOAD and value < _OVERLOAD + 1.0:
            value = _OVERLOAD + 1.0
        if value > 100.0:
            value = 100.0
        elif value < 0.0:
            value = 0.0
        return float(round(value))


def _percent(value: float) -> str:
    """Format like the API: ``61%`` for whole numbers, ``61.5%`` otherwise (round-trips)."""
    if math.isfinite(value) and value == int(value):
        return f"{int(value)}%"
    return f"{float(value)!r}%"


@functools.lru_cache(maxsize=4096)
def _json_string(text: str) -> str:
    return json.dumps(text)


@functools.lru_cache(maxsize=16384)
def _metrics_body(cpu: float, memory: float, service: str) -> bytes:
    """The JSON answer; memoised, as drifting values are whole percentages that repeat."""
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
        turns = _TAU * now
        return waves[0].value(instance.cpu, turns), waves[1].value(instance.memory, turns)


class Fault(NamedTuple):
    """What :class:`SimulatorServer` sends instead of the normal answer to one request.

    ``kind`` is one of:

    * ``"answer"``: ``status`` with ``body`` (default ``{"error": "<reason phrase>"}``) and
      extra ``headers``, the connection kept as usual;
    * ``"drop"``: close the connection without answering;
    * ``"cut"``: the normal answer announced in full, half its body sent, then close;
    * ``"flood"``: 200 with no Content-Length and a body that never ends until the client
      hangs up;
    * ``"stall"``: the normal answer's headers at once, its body ``delay`` seconds later;
    * ``"raw"``: ``body`` written as is (not even a status line is added), then close.
    """

    kind: str
    status: int = 200
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0

    @classmethod
    def answer(
        cls, status: int, body: bytes | None = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> Fault:
        return cls("answer", status, body, headers)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Fault:
        return cls("answer", status, b"", (("Location", location),))

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def cut(cls) -> Fault:
        return cls("cut")

    @classmethod
    def flood(cls) -> Fault:
        return cls("flood")

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        return cls("stall", delay=seconds)

    @classmethod
    def raw(cls, data: bytes) -> Fault:
        return cls("raw", body=data)


class FaultPlan(Protocol):
    """Decides the fault, if any, for the ``attempt``-th request (from 1) of ``path``."""

    def __call__(self, path: str, attempt: int) -> Fault | None: ...


EVIL_SERVICE = "Evil\x1b[2J\x1b]0;owned\x07\u202eService\r\n"
"""A service name made to rewrite a terminal: clear screen, set title, bell, bidi override."""

CHAOS_VALUES = (12, 34)
"""cpu and memory of the chaos answers that are valid (only their service name is hostile)."""


@functools.lru_cache(maxsize=1)
def _gzip_bomb() -> bytes:
    """About 10 KiB that inflate to 10 MB of spaces."""
    return gzip.compress(b" " * 10_000_000, compresslevel=9)


def _chaos_payload(**fields: object) -> Fault:
    return Fault.answer(200, json.dumps(fields).encode())


CHAOS: dict[str, Callable[[str], Fault]] = {
    "not-json": lambda _: Fault.answer(200, b'{"cpu": "12%", "memory": '),
    "not-utf8": lambda _: Fault.answer(
        200, b'{"cpu": "1%", "memory": "1%", "service": "\xff\xfe"}'
    ),
    "nested": lambda _: Fault.answer(200, b"[" * 5_000 + b"]" * 5_000),
    "many-arrays": lambda _: Fault.answer(200, b"[" + b"[]," * 300_000 + b"[]]"),
    "gzip-bomb": lambda _: Fault.answer(200, _gzip_bomb(), (("Content-Encoding", "gzip"),)),
    "not-object": lambda _: Fault.answer(200, b'["10.0.0.1", "../servers"]'),
    "no-service": lambda _: _chaos_payload(cpu="12%", memory="34%"),
    "service-not-string": lambda _: _chaos_payload(cpu="1%", memory="1%", service={"$ne": ""}),
    "service-too-long": lambda _: _chaos_payload(cpu="1%", memory="1%", service="A" * 10_000),
    "service-invisible": lambda _: _chaos_payload(
        cpu="1%", memory="1%", service="\x07\u200b\u202e\t"
    ),
    "cpu-not-percent": lambda _: _chaos_payload(cpu="12%; rm -rf /", memory="1%", service="S"),
    "memory-out-of-range": lambda _: _chaos_payload(cpu="1%", memory="250%", service="S"),
    "cpu-negative": lambda _: _chaos_payload(cpu=-5, memory="1%", service="S"),
    "memory-nan": lambda _: Fault.answer(200, b'{"cpu": "1%", "memory": NaN, "service": "S"}'),
    "oversize": lambda _: Fault.answer(200, b'{"pad": "' + b" " * (1024 * 1024) + b'"}'),
    "flood": lambda _: Fault.flood(),
    "bad-http": lambda _: Fault.raw(b"HTTP/1.1 2OO \x1b[2JOK\r\nContent-Length: 2\r\n\r\n{}"),
    "evil-reason": lambda _: Fault.raw(
        b"HTTP/1.1 404 \x1b[2J\x1b]0;owned\x07\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "redirect-loop": Fault.redirect,
    "redirect-file": lambda _: Fault.redirect("file:///etc/passwd"),
    "evil-service": lambda _: _chaos_payload(
        cpu=f"{CHAOS_VALUES[0]}%", memory=f"{CHAOS_VALUES[1]}%", service=EVIL_SERVICE
    ),
}
"""The hostile answers of chaos mode by name, each built from the request path when sent."""

CHAOS_JUNK: tuple[object, ...] = (
    "../../etc/passwd", "/servers", "10.0.0.1/../servers", "10.0.0.1?x=1", "10.0.0.1#x",
    "10.0.0.1:8080", "http://169.254.169.254/latest/meta-data", "//evil.example/x",
    "evil.example", "localhost", "", " 10.0.0.1", "10.0.0.1\r\nHost: evil.example",
    "\x1b[2J", "10.0.0.256", "fe80::1%eth0", "2001:db8::1/64", "[2001:db8::1]", "1" * 1000,
    42, 3.5, -1, True, None, [], {}, ["10.0.0.1"], {"ip": "10.0.0.1"},
)  # fmt: skip
"""``/servers`` entries that are not IP addresses; a client must never request them."""

CHAOS_RATE = 0.25
"""Share of the instances that answer hostile payloads under ``simulate --chaos``."""


@dataclass(frozen=True)
class Faults:
    """The seeded :class:`FaultPlan` of ``simulate``.

    Every request draws its fate from a hash of (``seed``, path, attempt number), never from
    arrival order, so a client's concurrency cannot change which request fails and a test can
    compute what must come back. With probability ``fail_rate`` a request gets a 503 or a dropped
    connection (half each); otherwise with probability ``slow_rate`` it stalls ``slow_ms``
    before its body. Independently, a share ``chaos`` of the instance paths always answer one
    of the :data:`CHAOS` payloads (``/servers`` is never chaotic; give the fleet
    :data:`CHAOS_JUNK` entries for that).
    """

    fail_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 10_000.0
    chaos: float = 0.0
    seed: int = 0

    def __call__(self, path: str, attempt: int) -> Fault | None:
        fault = self.transient(path, attempt)
        if fault is not None and fault.kind != "stall":
            return fault
        kind = self.chaos_kind(path)
        return fault if kind is None else CHAOS[kind](path)

    def transient(self, path: str, attempt: int) -> Fault | None:
        """The fail-rate or slow-rate fault this request draws, if any (a chaos path answers
        its payload at once instead of stalling)."""
        fail, which, slow = self._draws(f"{path}#{attempt}")
        if fail < self.fail_rate:
            return Fault.answer(503) if which < 0.5 else Fault.drop()
        if slow < self.slow_rate:
            return Fault.stall(self.slow_ms / 1000.0)
        return None

    def chaos_kind(self, path: str) -> str | None:
        """The name of the :data:`CHAOS` answer this path always gets, if any."""
        if path == "/servers" or self.chaos <= 0:
            return None
        pick, which, _ = self._draws(f"chaos{path}")
        if pick >= self.chaos:
            return None
        names = list(CHAOS)
        return names[int(which * len(names))]

    def _draws(self, key: str) -> tuple[float, float, float]:
        digest = hashlib.blake2b(f"{self.seed}/{key}".encode(), digest_size=6).digest()
        a, b, c = struct.unpack("<3H", digest)
        return a / 65536, b / 65536, c / 65536


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


_HEADERS_THAT_MATTER = frozenset(
    (b"connection", b"content-length", b"transfer-encoding", b"authorization")
)
"""Header names :meth:`_HttpProtocol._read_headers` acts on (the others are only checked)."""

_RESPONSE_HEAD = b"%s%s%sContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n%s"
"""Status line, Server (and X-Worker), Date, length, extra headers, Connection, body."""

_FLOOD_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: cpx-simulator\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\n\r\n"
)
_FLOOD_CHUNK = b'{"cpu": "1%", ' * 4096
_FLOOD_BUFFER = 256 * 1024


def _origin_form(target: bytes) -> bytes:
    """``/path?query`` of an absolute-form target (a request sent through a proxy)."""
    parts = urlsplit(target.decode("latin-1"))
    path = parts.path or "/"
    return (f"{path}?{parts.query}" if parts.query else path).encode("latin-1")


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
        self._authorization: str | None = None
        self._tail: Fault | None = None
        self._flooding = False
        self._plain_headers: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._connections.add(self)
        self._server.connections_opened += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        self._closing = True
        self._flooding = False
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._flooding:
            self._flood()
        elif self._transport is not None and not self._closing:
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
        payload = responses[0][0] if len(responses) == 1 else b"".join(r for r, _ in responses)
        delay = self._server.latency_ms / 1000.0
        if delay > 0:
            self._pending.append((self._loop.time() + delay, payload, keep_alive))
            if self._timer is None:
                self._timer = self._loop.call_at(self._pending[0][0], self._flush)
            return
        transport = self._transport
        if keep_alive and transport is not None and not transport.is_closing():
            transport.write(payload)
        else:
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
        if keep_alive:
            return
        tail, self._tail = self._tail, None
        if tail is None:
            transport.close()
        elif tail.kind == "flood":
            self._flooding = True
            self._flood()
        else:
            self._loop.call_later(tail.delay, self._write, tail.body or b"", False)

    def _flood(self) -> None:
        """Keep the send buffer topped up until the client hangs up (flow-controlled)."""
        transport = self._transport
        while (
            self._flooding
            and transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() < _FLOOD_BUFFER
        ):
            transport.write(_FLOOD_CHUNK)

    def _handle(self, head: bytes) -> tuple[bytes, bool]:
        request_line, crlf, block = head.partition(b"\r\n")
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
        self._authorization = None
        if crlf and block != self._plain_headers:
            keep_alive = self._read_headers(block, keep_alive)
        if target[:1] != b"/" and target.startswith((b"http://", b"https://")):
            target = _origin_form(target)
        path = target.decode("latin-1")
        server = self._server
        server.request_paths[path] += 1
        if self._authorization is not None:
            server.auth_headers[self._authorization] += 1
        if server.token is not None and self._authorization != f"Bearer {server.token}":
            unauthorized = Fault.answer(401, headers=(("WWW-Authenticate", "Bearer"),))
            return self._faulty(unauthorized, method, target, path, http10, keep_alive)
        faults = server.faults
        if faults is not None:
            fault = faults(path, server.request_paths[path])
            if fault is not None:
                return self._faulty(fault, method, target, path, http10, keep_alive)
        return self._respond(method, target, path, http10, keep_alive), keep_alive

    def _faulty(  # noqa: PLR0913, PLR0917 -- the parsed request, as _respond takes it
        self, fault: Fault, method: bytes, target: bytes, path: str, http10: bool, keep_alive: bool
    ) -> tuple[bytes, bool]:
        """The bytes to send now for a faulty answer; what follows later is left in _tail."""
        if fault.kind == "answer":
            body = _error_body(fault.status) if fault.body is None else fault.body
            extra = b"".join(f"{name}: {value}\r\n".encode() for name, value in fault.headers)
            message = self._message(
                fault.status, body, http10, keep_alive, extra, method == b"HEAD"
            )
            return message, keep_alive
        if fault.kind == "drop":
            return b"", False
        if fault.kind == "raw":
            return fault.body or b"", False
        if fault.kind == "flood":
            self._tail = fault
            return _FLOOD_HEAD, False
        normal = self._respond(method, target, path, http10, False)
        split = normal.find(b"\r\n\r\n") + 4
        if fault.kind == "cut":
            return normal[: split + (len(normal) - split) // 2], False
        self._tail = fault._replace(body=normal[split:])
        return normal[:split], False

    def _respond(
        self, method: bytes, target: bytes, path: str, http10: bool, keep_alive: bool
    ) -> bytes:
        server = self._server
        if method not in (b"GET", b"HEAD"):
            status, body = 405, _error_body(405)
        elif target == b"/servers":
            status, body = 200, server.fleet.servers_body()
        elif target[:1] == b"/":
            status, body = server.fleet.instance_response(path[1:], time.time())
        else:
            status, body = 400, _INVALID_IP_BODY
        extra = b"Allow: GET, HEAD\r\n" if status == 405 else b""
        return self._message(status, body, http10, keep_alive, extra, method == b"HEAD")

    def _message(  # noqa: PLR0913, PLR0917 -- the parts of one HTTP response
        self, status: int, body: bytes, http10: bool, keep_alive: bool, extra: bytes, head: bool
    ) -> bytes:
        if http10 and keep_alive:
            connection = b"Connection: keep-alive\r\n"
        elif keep_alive:
            connection = b""
        else:
            connection = b"Connection: close\r\n"
        server = self._server
        return _RESPONSE_HEAD % (
            _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode(),
            server.server_header,
            server._date.line(time.time()),
            len(body),
            extra,
            connection,
            b"" if head else body,
        )

    def _read_headers(self, block: bytes, keep_alive: bool) -> bool:
        """Apply the headers that matter; returns whether the connection stays open.

        A block with none of them is remembered: clients repeat the same headers on every
        request of a connection, and the next identical block is not parsed again.
        """
        plain = True
        for line in block.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon:
                raise _BadRequest(400)
            name = name.lower()
            if name not in _HEADERS_THAT_MATTER:
                continue
            plain = False
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
            elif name == b"authorization":
                self._authorization = value.strip().decode("latin-1")
        if plain:
            self._plain_headers = block
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

    ``faults`` answers chosen requests with a :class:`Fault`. With ``token``, any request without
    ``Authorization: Bearer <token>`` gets 401; ``auth_headers`` counts the Authorization values
    received (so a test can see a token did not travel). ``tls`` serves HTTPS with that context.
    Absolute-form targets (``GET http://host/path``) are answered too, as a proxy passes them.
    ``reuse_port`` binds with ``SO_REUSEPORT`` so several processes can share the port (see
    :class:`SimulatorWorkers`); ``worker`` adds an ``X-Worker: <worker>`` header to the answers,
    so a client can tell which process answered.
    """

    def __init__(  # noqa: PLR0913 -- each keyword is one independent knob of the fake API
        self,
        fleet: Fleet,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
        faults: FaultPlan | None = None,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        worker: int | None = None,
    ) -> None:
        self.fleet = fleet
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.faults = faults
        self.token = token
        self.tls = tls
        self.reuse_port = reuse_port
        self.server_header = b"Server: cpx-simulator\r\n" + (
            b"" if worker is None else f"X-Worker: {worker}\r\n".encode()
        )
        self.url = ""
        self.request_paths: collections.Counter[str] = collections.Counter()
        self.auth_headers: collections.Counter[str] = collections.Counter()
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
                        lambda: _HttpProtocol(self),
                        self.host,
                        self.port,
                        backlog=1024,
                        ssl=self.tls,
                        reuse_port=self.reuse_port or None,
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
        self.url = loopback_url(self.host, self.port, "http" if self.tls is None else "https")
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

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; False once the server is no longer running."""
        if self._thread is None or not self._thread.is_alive():
            return False
        self._thread.join(timeout)
        return True

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


WORKERS_SUPPORTED = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""Whether :class:`SimulatorWorkers` can run here: it needs ``fork`` and Linux's ``SO_REUSEPORT``,
which spreads new connections evenly over the processes listening on one port."""


class SimulatorWorkers:
    """:class:`SimulatorServer` in ``workers`` processes on one port, so it scales across cores.

    This process binds first (port 0 is resolved here), then forks ``workers - 1`` processes
    before any thread starts; each one, this one included, runs its own loop and listens with
    ``SO_REUSEPORT``, so the kernel spreads connections over them. Every worker serves its own
    copy of the same ``fleet`` (drift depends only on the seed and the clock, so they all answer
    alike) and marks its answers ``X-Worker: <n>`` (1 is this process). Fault attempt counters
    (``request_paths``) are per worker. :meth:`start` returns once every worker listens;
    :meth:`stop` stops them all and reaps them, and a worker whose parent is gone stops by
    itself. Linux only (see :data:`WORKERS_SUPPORTED`).
    """

    def __init__(  # noqa: PLR0913 -- the knobs of SimulatorServer that `simulate` uses
        self,
        fleet: Fleet,
        host: str,
        port: int,
        workers: int,
        *,
        latency_ms: float = 0.0,
        faults: FaultPlan | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.fleet = fleet
        self.host = host
        self.port = port
        self.workers = workers
        self.latency_ms = latency_ms
        self.faults = faults
        self.url = ""
        self.pids: list[int] = []
        """Process ids of the forked workers (this process is worker 1)."""
        self._server: SimulatorServer | None = None
        self._inherited: list[int] = []

    def _simulator(self, worker: int) -> SimulatorServer:
        return SimulatorServer(
            self.fleet,
            self.host,
            self.port,
            latency_ms=self.latency_ms,
            faults=self.faults,
            reuse_port=True,
            worker=worker,
        )

    def start(self) -> str:
        """Start every worker; returns the base URL. Bind errors raise :class:`OSError`."""
        if not WORKERS_SUPPORTED:
            raise OSError("serving from several processes needs Linux (SO_REUSEPORT)")
        if self._server is not None:
            raise RuntimeError("simulator already started")
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as reserved:
            reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            reserved.bind(address)
            self.port = reserved.getsockname()[1]
            self._inherited = [reserved.fileno()]
            try:
                readiness = []
                for worker in range(2, self.workers + 1):
                    readiness.append(self._fork(worker))
                    self._inherited.append(readiness[-1])
                self._server = self._simulator(1)
                self.url = self._server.start()
                for ready in readiness:
                    self._wait_ready(ready)
            except BaseException:
                self.stop()
                raise
        return self.url

    def _fork(self, worker: int) -> int:
        """Fork worker number ``worker``; returns the pipe it reports readiness on."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            for inherited in self._inherited:
                os.close(inherited)
            self._run_worker(worker, write_end, parent)
        os.close(write_end)
        self.pids.append(pid)
        return read_end

    def _run_worker(self, worker: int, ready: int, parent: int) -> NoReturn:
        """The whole life of a forked worker; it never returns into the caller's code."""
        status = 1
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            server = self._simulator(worker)
            try:
                server.start()
            except OSError as err:
                os.write(ready, (err.strerror or str(err)).encode())
                os._exit(status)
            os.write(ready, b"ok")
            os.close(ready)
            status = 0
            with contextlib.suppress(KeyboardInterrupt):
                serve_until_stopped(lambda: server.wait(0) and os.getppid() == parent)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            server.stop()
        except BaseException:  # a forked worker must end here, whatever happened
            status = 1
        os._exit(status)

    def _wait_ready(self, ready: int) -> None:
        chunks = []
        try:
            while chunk := os.read(ready, 1024):
                chunks.append(chunk)
        finally:
            os.close(ready)
        answer = b"".join(chunks)
        if answer != b"ok":
            raise OSError(answer.decode(errors="replace") or "a worker process failed to start")

    def stop(self) -> None:
        """Stop this process's server, then every worker (SIGTERM, then SIGKILL after 10 s)."""
        if self._server is not None:
            self._server.stop()
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for pid in self.pids:
            while not self._reaped(pid):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = math.inf
                time.sleep(0.01)
        self.pids = []

    @staticmethod
    def _reaped(pid: int) -> bool:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return done == pid

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; False once this process's server no longer runs."""
        return self._server is not None and self._server.wait(timeout)

    def __enter__(self) -> SimulatorWorkers:
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


def _fault_notes(
    latency_ms: float, fail_rate: float, slow_rate: float, slow_ms: float, chaos: bool
) -> list[str]:
    notes = [f"{latency_ms:g} ms latency"] if latency_ms > 0 else []
    if fail_rate > 0:
        notes.append(f"{fail_rate:.0%} failing")
    if slow_rate > 0:
        notes.append(f"{slow_rate:.0%} stalling {slow_ms:g} ms")
    if chaos:
        notes.append("chaos")
    return notes


def serve(  # noqa: PLR0913 -- one keyword per option of the simulate command
    *,
    host: str,
    port: int,
    fleet_size: int,
    seed: int | None,
    reference: bool,
    latency_ms: float,
    out: TextIO,
    fail_rate: float = 0.0,
    slow_rate: float = 0.0,
    slow_ms: float = 10_000.0,
    chaos: bool = False,
    workers: int = 1,
) -> None:
    """Run a server until Ctrl+C: the blocking core of ``cli_devops simulate``.

    Writes one line to ``out`` saying where it listens, then waits; KeyboardInterrupt (or
    SIGTERM once it listens, when called from the main thread) stops the server cleanly and
    returns. With ``workers`` above 1 the simulator is served by that many processes
    (:class:`SimulatorWorkers`; fault attempt counters are then per worker). With ``reference``
    the fixed reference fleet is served, so ``fleet_size``, ``seed``, ``latency_ms`` and the
    faults do not apply (and ``workers`` must be 1). The faults are the :class:`Faults` plan
    under the fleet's seed; ``chaos`` also adds :data:`CHAOS_JUNK` to ``/servers``. Bind failures
    (port in use) raise :class:`OSError` for the caller to report.
    """
    if reference and workers != 1:
        raise ValueError("the reference server is single-threaded: it has no workers")
    server: SimulatorServer | SimulatorWorkers | ReferenceServer
    if reference:
        server = ReferenceServer(host, port)
        url = server.start()
        line = (
            f"CPX reference server listening on {url} "
            f"({len(server.fleet.instances)} instances, single-threaded HTTP/1.0)"
        )
    else:
        fleet = Fleet.generate(fleet_size, seed)
        faults = (
            Faults(fail_rate, slow_rate, slow_ms, CHAOS_RATE if chaos else 0.0, fleet.seed)
            if fail_rate > 0 or slow_rate > 0 or chaos
            else None
        )
        if chaos:
            fleet.junk_servers = list(CHAOS_JUNK)
        if workers > 1:
            server = SimulatorWorkers(
                fleet, host, port, workers, latency_ms=latency_ms, faults=faults
            )
        else:
            server = SimulatorServer(fleet, host, port, latency_ms=latency_ms, faults=faults)
        url = server.start()
        notes = [f"{workers} worker processes"] if workers > 1 else []
        notes += _fault_notes(latency_ms, fail_rate, slow_rate, slow_ms, chaos)
        line = (
            f"CPX simulator listening on {url} "
            f"({len(fleet.instances)} instances, seed {fleet.seed}"
            f"{''.join(', ' + note for note in notes)}); press Ctrl+C to stop"
        )
    try:
        out.write(line + "\n")
        out.flush()
        serve_until_stopped(lambda: server.wait(0))
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
