"""Where health is decided: the instance rule, per-service summaries and the under-replication flag.

Pure functions over `model.Instance`; no I/O, so the CLI, the live tracker and the exporter all
apply exactly the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cli_devops.model import Instance, InstanceList
from cli_devops.settings import DEFAULT_MIN_HEALTHY, DEFAULT_THRESHOLD

OUTLIER_MIN_READ = 5
"""A service needs this many instances with figures read before any of them can be an outlier."""
OUTLIER_MADS = 3.5
MAD_SCALE = 1.4826
"""Scales the median absolute deviation to a standard deviation for normally spread figures."""
OUTLIER_MIN_POINTS = 20.0
"""Percentage points an outlier must be away from its service's median, however tight the rest."""
DISTANCE_DIGITS = 9
"""Decimal places a distance from the median is compared at (far below any reading's)."""


class Status(StrEnum):
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Thresholds:
    """An instance is Unhealthy when a figure is strictly above its threshold (90 is Healthy)."""

    cpu: float = DEFAULT_THRESHOLD
    memory: float = DEFAULT_THRESHOLD


def instance_status(instance: Instance, thresholds: Thresholds) -> Status:
    if instance.cpu is None or instance.memory is None:
        return Status.UNKNOWN
    if instance.cpu > thresholds.cpu or instance.memory > thresholds.memory:
        return Status.UNHEALTHY
    return Status.HEALTHY


@dataclass(frozen=True)
class ServiceSummary:
    """One service's instance counts and averages (over instances with valid figures)."""

    service: str
    instances: int
    healthy: int
    unhealthy: int
    unknown: int
    cpu_avg: float | None
    memory_avg: float | None
    status: Status
    outliers: int = 0
    """Instances that are outliers within the service (see `outliers`)."""


def summarize_services(
    instances: Iterable[Instance],
    thresholds: Thresholds,
    min_healthy: int = DEFAULT_MIN_HEALTHY,
) -> list[ServiceSummary]:
    """Per-service summaries sorted by service name.

    Instances whose service is not known (they could not be read at all) belong to no service and
    are left out; callers report them separately.
    """
    groups = by_service(instances)
    return [_summarize(name, groups[name], thresholds, min_healthy) for name in sorted(groups)]


def by_service(instances: Iterable[Instance]) -> dict[str, list[Instance]]:
    """Instances grouped by service, in the order given; those with no known service left out
    (the unrequested ones of an `InstanceList` among them, not even looked at)."""
    if isinstance(instances, InstanceList):
        instances = instances.requested
    groups: dict[str, list[Instance]] = {}
    for instance in instances:
        if instance.service is not None:
            groups.setdefault(instance.service, []).append(instance)
    return groups


def outliers(instances: Iterable[Instance]) -> set[str]:
    """IPs of the instances that differ from the rest of their service in the same snapshot.

    Within a service with at least OUTLIER_MIN_READ instances whose figures were read, an
    instance is an outlier in CPU (or memory) when |x - median| > 3.5 x 1.4826 x MAD and
    |x - median| >= 20 points, median and MAD (median absolute deviation) taken over the
    service's read instances; it is an outlier when it is one in either figure. The robust
    spread lets one hot replica stand out where a mean and standard deviation would be dragged
    towards it; the 20-point floor keeps a tight service's small wobbles from being flagged.
    """
    flagged: set[str] = set()
    for members in by_service(instances).values():
        flagged.update(service_outliers(members))
    return flagged


def service_outliers(members: Sequence[Instance]) -> set[str]:
    """`outliers` for the instances of one service."""
    read = [i for i in members if i.cpu is not None and i.memory is not None]
    if len(read) < OUTLIER_MIN_READ:
        return set()
    flagged: set[str] = set()
    for values in ([i.cpu for i in read], [i.memory for i in read]):
        figures = [float(value) for value in values if value is not None]
        for index in _deviating(figures):
            flagged.add(read[index].ip)
    return flagged


def median(values: Sequence[float]) -> float:
    """The median (here rather than `statistics`, whose import every command would pay)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _deviating(values: Sequence[float]) -> list[int]:
    centre = median(values)
    # Rounded so that a service moved as a whole keeps its outliers: 32.4 - 12.4 is
    # 19.999999999999996 in floating point, 32 - 12 is 20.
    distances = [round(abs(value - centre), DISTANCE_DIGITS) for value in values]
    limit = round(OUTLIER_MADS * MAD_SCALE * median(distances), DISTANCE_DIGITS)
    return [
        index
        for index, distance in enumerate(distances)
        if distance > limit and distance >= OUTLIER_MIN_POINTS
    ]


def _summarize(
    service: str, members: Sequence[Instance], thresholds: Thresholds, min_healthy: int
) -> ServiceSummary:
    counts = dict.fromkeys(Status, 0)
    cpu_total = memory_total = 0.0
    for instance in members:
        counts[instance_status(instance, thresholds)] += 1
        if instance.cpu is not None and instance.memory is not None:
            cpu_total += instance.cpu
            memory_total += instance.memory
    valid = counts[Status.HEALTHY] + counts[Status.UNHEALTHY]
    return ServiceSummary(
        service=service,
        instances=len(members),
        healthy=counts[Status.HEALTHY],
        unhealthy=counts[Status.UNHEALTHY],
        unknown=counts[Status.UNKNOWN],
        cpu_avg=cpu_total / valid if valid else None,
        memory_avg=memory_total / valid if valid else None,
        status=Status.HEALTHY if counts[Status.HEALTHY] >= min_healthy else Status.UNHEALTHY,
        outliers=len(service_outliers(members)),
    )


def under_replicated(summaries: Iterable[ServiceSummary]) -> list[ServiceSummary]:
    """The services flagged Unhealthy: fewer healthy instances than required, zero included."""
    return [summary for summary in summaries if summary.status is Status.UNHEALTHY]
