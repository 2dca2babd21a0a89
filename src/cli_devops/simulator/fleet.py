"""The simulated fleet: which instances exist, their service, and what each reports over time.

Both servers of the package answer from a :class:`Fleet`: the simulator's generated, drifting
fleet (:meth:`Fleet.generate`) or the reference server's (:meth:`Fleet.reference`). The answer
bodies are built here too, so every server sends the same bytes for the same state.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import struct
from dataclasses import dataclass, replace
from http import HTTPStatus

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

REFERENCE_SERVICES: tuple[str, ...] = (
    "PermissionsService",
    "AuthService",
    "MLService",
    "StorageService",
    "TimeService",
    "GeoService",
    "TicketService",
    "RoleService",
    "IdService",
    "UserService",
    "RoleService",
)
"""The reference server's service names, in its order; RoleService is there twice, so it runs
on about two elevenths of the fleet (see :func:`reference_service`)."""

INVALID_IP_BODY = b'{"error": "Invalid IP"}'
_OVERLOAD = 90.0
_STEADY = 80.0
"""A base figure at most this far stays under the thresholds however it drifts (by 10 at most)."""
_TAU = 2.0 * math.pi
_REFERENCE_SEED = 8080
_REFERENCE_SIZE = 150
_MAX_GENERATED = 256 * 256 * 254
_TWELVE_SHORTS = struct.Struct("<12H")


@dataclass(frozen=True)
class Flap:
    """An instance overloaded on a schedule: from ``start`` (wall-clock seconds, as the servers'
    clock) for ``down`` seconds, then again every ``period`` seconds (``None``: once, so the
    instance heals for good). While overloaded it reports ``cpu`` percent; otherwise its own
    figures. Tests choose short schedules; the demo fleet has one that repeats every minute."""

    start: float
    down: float
    period: float | None = None
    cpu: float = 97.0

    def overloaded(self, now: float) -> bool:
        elapsed = now - self.start
        if elapsed < 0:
            return False
        if self.period is not None:
            elapsed %= self.period
        return elapsed < self.down


@dataclass
class SimInstance:
    """One simulated instance.

    ``cpu`` and ``memory`` are base percentages; with drift they are the centre of the wave.
    ``raw`` replaces the generated payload byte for byte (sent with ``status``), so tests can
    serve malformed JSON. A ``status`` other than 200 without ``raw`` sends
    ``{"error": "<reason phrase>"}``. ``flap`` overloads it on a schedule.
    """

    service: str
    cpu: float
    memory: float
    raw: bytes | None = None
    status: int = 200
    flap: Flap | None = None


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
def metrics_body(cpu: float, memory: float, service: str) -> bytes:
    """The JSON answer; memoised, as drifting values are whole percentages that repeat."""
    return (
        f'{{"cpu": "{_percent(cpu)}", "memory": "{_percent(memory)}", '
        f'"service": {_json_string(service)}}}'
    ).encode()


def error_body(status: int) -> bytes:
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


def reference_service(ip: str) -> str:
    """The service the reference server reports for ``ip``, by its rule: the MD5 digest of the
    address as text (UTF-8), read as one big-endian number, modulo the length of
    :data:`REFERENCE_SERVICES`, indexes that list."""
    digest = hashlib.md5(ip.encode(), usedforsecurity=False).digest()
    return REFERENCE_SERVICES[int.from_bytes(digest, "big") % len(REFERENCE_SERVICES)]


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

        Each IP has the service the reference server gives it (:func:`reference_service`), so
        both show the same fleet. The base values are fixed by a seed; :class:`ReferenceServer`
        ignores them and reports fresh random values per request, as the reference does.
        """
        rng = random.Random(_REFERENCE_SEED)
        instances = {}
        for n in range(1, _REFERENCE_SIZE + 1):
            ip = f"10.58.1.{n}"
            cpu, memory = float(rng.randint(0, 100)), float(rng.randint(0, 100))
            instances[ip] = SimInstance(reference_service(ip), cpu, memory)
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
            return 400, INVALID_IP_BODY
        if instance.raw is not None:
            return instance.status, instance.raw
        if instance.status != 200:
            return instance.status, error_body(instance.status)
        cpu, memory = self._metrics(ip, instance, now)
        return 200, metrics_body(cpu, memory, instance.service)

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

    def flap_service(self, start: float, down: float, period: float | None = None) -> str | None:
        """Overload, on a schedule (:class:`Flap`), one instance of a service that has exactly
        two instances well under the thresholds, so the service drops under two healthy
        instances and recovers; returns its name (None when no service has two such)."""
        steady: dict[str, list[str]] = {}
        for ip, instance in self.instances.items():
            if max(instance.cpu, instance.memory) <= _STEADY:
                steady.setdefault(instance.service, []).append(ip)
        pairs = sorted(name for name, ips in steady.items() if len(ips) == 2)
        if not pairs:
            return None
        ip = steady[pairs[0]][0]
        self.instances[ip] = replace(self.instances[ip], flap=Flap(start, down, period))
        return pairs[0]

    def _metrics(self, ip: str, instance: SimInstance, now: float) -> tuple[float, float]:
        if instance.flap is not None and instance.flap.overloaded(now):
            memory = self._drifted(ip, instance, now)[1] if self.drift else instance.memory
            return instance.flap.cpu, memory
        if not self.drift:
            return instance.cpu, instance.memory
        return self._drifted(ip, instance, now)

    def _drifted(self, ip: str, instance: SimInstance, now: float) -> tuple[float, float]:
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
