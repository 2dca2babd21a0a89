"""The fleet read from Prometheus (or anything speaking its query API) instead of from CPX.

The exporter's shards put every instance in Prometheus as `cpx_instance_scrape_success{ip}`,
`cpx_instance_cpu_usage_ratio{ip, cpx_service}` and `cpx_instance_memory_usage_ratio`, beside
each shard's `cpx_up` and Prometheus's own `up` per target. One read is five queries evaluated
at one moment (`time=`), run concurrently, and a sixth when a target is down:

* `up{sel}[lookback]` and `cpx_up{sel}[lookback]`: per target, whether it was scraped
  (`up`), whether its exporter read CPX (`cpx_up`), and the age of its last sample against
  its scrape interval (the median gap between its samples);
* the current CPU and memory series (exported exactly for the instances the exporter read),
  and the `cpx_instance_scrape_success` series that are not 1 (the instances it could not);
* only when a target is not current, `last_over_time(cpx_instance_scrape_success{sel}[lookback])`:
  every instance seen lately, so the instances of a shard that is down are reported (Unknown),
  not dropped.

An instance is read when its target is current and its figures are present; Unknown with the
exporter's word when `cpx_instance_scrape_success` is 0; Unknown naming the target when the
target is down or stale; and left out when its target is current but no longer exports it (it
left the fleet, as `/servers` would say). Figures are turned back into the percentages CPX
sent and checked like CPX answers; health is decided by `health.py`, not in PromQL.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar
from urllib.parse import quote, urlencode

from cli_devops.client import CpxClient, ReadBudget, RequestFailed, Snapshot
from cli_devops.errors import ApiUnreachable, PayloadError
from cli_devops.model import Instance, ip_sort_key, parse_percent, parse_servers, parse_service
from cli_devops.settings import PrometheusSettings
from cli_devops.sources.prometheus_api import (
    INSTANCE_LABELS,
    InstanceSample,
    Labels,
    Range,
    parse_instance_vector,
    parse_matrix,
)
from cli_devops.sources.promql import rfc3339, with_matcher

MAX_ANSWER = 1024 * 1024 * 1024
"""Bytes of one query answer: 100,000 instances are about 15 MB per query."""
SCRAPE_SUCCESS = "cpx_instance_scrape_success"
CPU = "cpx_instance_cpu_usage_ratio"
MEMORY = "cpx_instance_memory_usage_ratio"
_T = TypeVar("_T")


class PrometheusRead(NamedTuple):
    """One read: the fleet as `fetch_snapshot` returns it, and one line per target down."""

    snapshot: Snapshot
    down: list[str]


def _target_of(labels: Labels) -> Labels:
    return tuple(pair for pair in labels if pair[0] not in INSTANCE_LABELS)


def target_name(target: Labels) -> str:
    """`127.0.0.1:8095 (job cpx)`: the `instance` label, else every label of the target."""
    labels = dict(target)
    name = labels.get("instance")
    if name is None:
        return "{" + ", ".join(f"{key}={value}" for key, value in target) + "}"
    return f"{name} (job {labels['job']})" if "job" in labels else name


def _interval(points: Sequence[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    return statistics.median(later[0] - earlier[0] for earlier, later in zip(points, points[1:]))


def target_states(up: list[Range], cpx_up: list[Range], at: float) -> dict[Labels, str | None]:
    """Per exporter target (one with `cpx_up` in the lookback): None when its series are
    current, else why not: down (`up` 0), its exporter cannot read CPX (`cpx_up` 0), or no
    sample within two scrape intervals."""
    up_points = {_target_of(series.labels): series.points for series in up}
    states: dict[Labels, str | None] = {}
    for series in cpx_up:
        target = _target_of(series.labels)
        name = target_name(target)
        scraped = up_points.get(target)
        cpx_time, cpx_value = series.points[-1]
        interval = _interval(scraped or series.points)
        reason = None
        if scraped is not None and scraped[-1][1] != 1:
            reason = f"exporter target {name} is down (up {scraped[-1][1]:g})"
        elif cpx_value != 1:
            reason = f"the exporter at target {name} cannot read CPX (cpx_up {cpx_value:g})"
        elif interval is not None and at - cpx_time > 2 * interval:
            reason = (
                f"exporter target {name} has no sample for {at - cpx_time:.0f}s "
                f"(scrape interval {interval:g}s)"
            )
        states[target] = reason
    return states


def percent(ratio: float, field_name: str) -> float:
    """The percentage CPX sent, from the exporter's ratio: the shortest decimal that divides
    back to exactly `ratio` (61.5, not 61.50000000000001), checked like a CPX figure."""
    number = ratio * 100
    if math.isfinite(number):
        for digits in range(16):
            candidate = round(number, digits)
            if candidate / 100 == ratio:
                number = candidate
                break
    return parse_percent(number, field_name)


class _Reading:
    """What the current series say of one instance, from the one target chosen for it."""

    __slots__ = ("cpu", "memory", "success", "target", "timestamp")

    def __init__(self, target: Labels, timestamp: float) -> None:
        self.target = target
        self.timestamp = timestamp
        self.success = 1.0
        self.cpu: InstanceSample | None = None
        self.memory: InstanceSample | None = None


def assemble(
    states: dict[Labels, str | None],
    known: list[InstanceSample],
    failed: list[InstanceSample],
    cpu: list[InstanceSample],
    memory: list[InstanceSample],
) -> PrometheusRead:
    """The fleet from the answers of one read (pure; see the module docstring for the rules).

    `failed` holds the `cpx_instance_scrape_success` series that are not 1 (the exporter
    exports an instance's figures exactly when it read them, so a 1 adds nothing); `known`,
    every instance of the lookback, is needed only when some target is not current.
    """
    current = {target for target, reason in states.items() if reason is None}
    fresh: dict[str, _Reading] = {}
    for samples in (cpu, memory, failed):
        for sample in samples:
            if sample.ip is None or sample.target not in current:
                continue
            reading = fresh.get(sample.ip)
            if reading is None or (sample.timestamp, sample.target) > (
                reading.timestamp,
                reading.target,
            ):
                fresh[sample.ip] = _Reading(sample.target, sample.timestamp)
    for samples, figure in ((cpu, "cpu"), (memory, "memory"), (failed, "success")):
        for sample in samples:
            reading = fresh.get(sample.ip or "")
            if reading is not None and reading.target == sample.target:
                setattr(reading, figure, sample.value if figure == "success" else sample)
    seen: dict[str, list[Labels]] = {}
    for sample in known:
        if sample.ip is not None and sample.ip not in fresh:
            seen.setdefault(sample.ip, []).append(sample.target)
    listing = parse_servers([*fresh, *seen])
    instances = []
    down: dict[Labels, int] = {}
    for ip in listing.ips:
        reading = fresh.get(ip)
        if reading is not None:
            instances.append(_instance(ip, reading))
            continue
        reasons = [(states[t], t) for t in seen[ip] if states.get(t) is not None]
        if reasons:  # else every target it was on is current and no longer has it: it left
            reason, target = min(reasons)
            down[target] = down.get(target, 0) + 1
            instances.append(Instance(ip, None, None, None, reason))
    lines = [
        f"{states[target]}: {count} instance{'s' * (count != 1)} Unknown"
        for target, count in sorted(down.items(), key=lambda item: str(states[item[0]]))
    ]
    return PrometheusRead(Snapshot(instances, listing.skipped, 0), lines)


def _instance(ip: str, reading: _Reading) -> Instance:
    if reading.success == 0:
        return Instance(ip, None, None, None, "the exporter could not read it from CPX")
    if reading.success != 1:
        return Instance(ip, None, None, None, f"{SCRAPE_SUCCESS} is not 0 or 1")
    if reading.cpu is None or reading.memory is None:
        missing = "memory" if reading.memory is None else "CPU"
        return Instance(ip, None, None, None, f"no {missing} series in Prometheus")
    return _figures(ip, reading.cpu, reading.memory)


def _figures(ip: str, cpu: InstanceSample, memory: InstanceSample) -> Instance:
    """An instance from its CPU and memory series, checked as a CPX answer is."""
    name = cpu.service
    if name != memory.service:
        return Instance(ip, None, None, None, "CPU and memory series name different services")
    try:
        service = parse_service(name)
    except PayloadError as err:
        return Instance(ip, None, None, None, str(err))
    try:
        return Instance(ip, service, percent(cpu.value, "cpu"), percent(memory.value, "memory"))
    except PayloadError as err:
        return Instance(ip, service, None, None, str(err))


class PrometheusSource:
    """An open connection to one Prometheus; `async with PrometheusSource(settings) as source`.

    It reuses `CpxClient`'s HTTP set-up (pool, TLS, timeouts, retries, retry budget, deadline).
    """

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self.base_url = settings.client.base_url
        self._client = CpxClient(settings.client)
        self._service: str | None = None
        self.requests = 0

    async def __aenter__(self) -> PrometheusSource:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.__aexit__(*exc_info)

    def _series(self, metric: str) -> str:
        return metric + self.settings.selector

    async def read(self, at: float | None = None) -> PrometheusRead:
        """The fleet as Prometheus saw it at `at` (Unix seconds; now when None)."""
        moment = time.time() if at is None else at
        budget = self._client.begin()
        lookback = f"[{self.settings.lookback:g}s]"
        instant = {"time": f"{moment:.3f}"}
        targets: dict[Labels, Labels] = {}
        up, cpx_up, failed, cpu, memory = await asyncio.gather(
            self._query_matrix(self._series("up") + lookback, instant, budget),
            self._query_matrix(self._series("cpx_up") + lookback, instant, budget),
            self._query(self._series(SCRAPE_SUCCESS) + " != 1", instant, targets, budget),
            self._query(CPU + self._figures_selector(), instant, targets, budget),
            self._query(MEMORY + self._figures_selector(), instant, targets, budget),
        )
        if not cpx_up:
            raise ApiUnreachable(
                f"Prometheus at {self.base_url} has no {self._series('cpx_up')} series in the "
                f"{self.settings.lookback:g}s before {rfc3339(moment)}: it scrapes no exporter"
                + (" that the selector matches" if self.settings.selector else ""),
                kind="prometheus",
            )
        states = target_states(up, cpx_up, moment)
        known: list[InstanceSample] = []
        if any(reason is not None for reason in states.values()):
            # Only then can an instance be missing from the current series and still be in the
            # fleet: its last values in the lookback say it was there.
            promql = f"last_over_time({self._series(SCRAPE_SUCCESS)}{lookback})"
            known = await self._query(promql, instant, targets, budget)
        return assemble(states, known, failed, cpu, memory)

    async def snapshot(self) -> Snapshot:
        """The fleet now, as `CpxClient.snapshot` reads it (the seam `track` and `top` use)."""
        return (await self.read()).snapshot

    def focus(self, service: str | None) -> None:
        """Read only `service`'s figures from now on (None: every service's). The instances of
        other services are then left out, except those Unknown for want of a reading, which
        have no service anyway: what a view of one service shows is unchanged, at a fraction
        of the answer's size."""
        self._service = service

    def _figures_selector(self) -> str:
        if self._service is None:
            return self.settings.selector
        return with_matcher(self.settings.selector, "cpx_service", self._service)

    async def history(
        self, service: str | None, start: float, end: float, step: float
    ) -> list[tuple[float, list[Instance]]]:
        """The instances of `service` (every service's when None) at every `step` from `start`
        to `end`: those with figures at that moment (an instance whose target was down then is
        missing from that step)."""
        budget = self._client.begin()
        selector = self.settings.selector
        if service is not None:
            selector = with_matcher(selector, "cpx_service", service)
        window = {"start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        cpu, memory = await asyncio.gather(
            self._query_range(CPU + selector, window, budget),
            self._query_range(MEMORY + selector, window, budget),
        )
        return history_steps(cpu, memory)

    async def _query(
        self,
        promql: str,
        params: dict[str, str],
        targets: dict[Labels, Labels],
        budget: ReadBudget,
    ) -> list[InstanceSample]:
        body = await self._get("/api/v1/query", {"query": promql, **params}, budget)
        return self._parsed(lambda answer: parse_instance_vector(answer, targets), body)

    async def _query_matrix(
        self, promql: str, params: dict[str, str], budget: ReadBudget
    ) -> list[Range]:
        body = await self._get("/api/v1/query", {"query": promql, **params}, budget)
        return self._parsed(parse_matrix, body)

    async def _query_range(
        self, promql: str, params: dict[str, str], budget: ReadBudget
    ) -> list[Range]:
        body = await self._get("/api/v1/query_range", {"query": promql, **params}, budget)
        return self._parsed(parse_matrix, body)

    def _parsed(self, parse: Callable[[bytes], list[_T]], body: bytes) -> list[_T]:
        try:
            return parse(body)
        except PayloadError as err:
            reason = f"unusable answer from Prometheus at {self.base_url}: {err}"
            raise ApiUnreachable(reason, kind="prometheus") from None

    async def _get(self, path: str, params: dict[str, str], budget: ReadBudget) -> bytes:
        params = {**params, "timeout": f"{self.settings.client.timeout:g}s"}
        self.requests += 1
        try:
            return await self._client.get_bytes(
                f"{path}?{urlencode(params, quote_via=quote)}", MAX_ANSWER, budget
            )
        except RequestFailed as err:
            refused = ", the credentials were refused" if err.status in (401, 403) else ""
            reason = f"cannot query Prometheus at {self.base_url}: {err}{refused}"
            raise ApiUnreachable(reason, kind="prometheus") from None


def history_steps(cpu: list[Range], memory: list[Range]) -> list[tuple[float, list[Instance]]]:
    """Per step of a range query, the instances with both figures then, in IP order."""
    ratios: dict[tuple[float, str, Labels], float] = {}
    for series in memory:
        ip, target = dict(series.labels).get("ip", ""), _target_of(series.labels)
        for moment, value in series.points:
            ratios[moment, ip, target] = value
    steps: dict[float, list[Instance]] = {}
    for series in cpu:
        labels = dict(series.labels)
        ip, service, target = (
            labels.get("ip", ""),
            labels.get("cpx_service"),
            _target_of(series.labels),
        )
        for moment, value in series.points:
            ratio = ratios.get((moment, ip, target))
            if ratio is None:
                continue
            reading = _Reading(target, moment)
            reading.cpu = InstanceSample(ip, service, target, moment, value)
            reading.memory = InstanceSample(ip, service, target, moment, ratio)
            steps.setdefault(moment, []).append(_instance(ip, reading))
    valid = set(parse_servers(list({i.ip for members in steps.values() for i in members})).ips)
    return [
        (
            moment,
            sorted((i for i in steps[moment] if i.ip in valid), key=lambda i: ip_sort_key(i.ip)),
        )
        for moment in sorted(steps)
    ]


def fetch_fleet(settings: PrometheusSettings, at: float | None = None) -> PrometheusRead:
    """Read the whole fleet once from Prometheus (blocking), at `at`, else `settings.at`, else
    now."""
    read: list[PrometheusRead] = []

    async def run() -> None:
        async with PrometheusSource(settings) as source:
            read.append(await source.read(settings.at if at is None else at))

    asyncio.run(run())
    return read[0]
