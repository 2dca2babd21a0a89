"""The fleet from the answers of one read of Prometheus (pure): which targets are current,
which instance each series belongs to, and the percentages CPX sent (the rules are in
`prometheus.py`'s docstring)."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple

from cli_devops.errors import PayloadError
from cli_devops.model import (
    Instance,
    Snapshot,
    ip_sort_key,
    parse_percent,
    parse_servers,
    parse_service,
)
from cli_devops.sources.prometheus_api import (
    INSTANCE_LABELS,
    InstanceSample,
    Labels,
    Range,
)

SCRAPE_SUCCESS = "cpx_instance_scrape_success"
CPU = "cpx_instance_cpu_usage_ratio"
MEMORY = "cpx_instance_memory_usage_ratio"


class PrometheusRead(NamedTuple):
    """One read: the fleet as a `Snapshot`, and one line per target down."""

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
    return statistics.median(later[0] - earlier[0] for earlier, later in itertools.pairwise(points))


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
