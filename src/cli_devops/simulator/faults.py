"""What the simulator sends instead of a normal answer: faults, the seeded plan, chaos payloads.

A :class:`FaultPlan` decides, from the request path and how many times that path was requested,
whether to answer normally or with a :class:`Fault` (an error status, a dropped connection, a
truncated or endless body, a stall, a redirect, raw bytes). :class:`Faults` is the seeded plan
behind ``cli_devops simulate --fail-rate/--slow-rate/--chaos``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol


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
