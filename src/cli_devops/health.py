"""Where health is decided: the instance rule, per-service summaries and the under-replication flag.

Pure functions over `model.Instance`; no I/O, so the CLI, the live tracker and the exporter all
apply exactly the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cli_devops.model import Instance

DEFAULT_THRESHOLD = 90.0
DEFAULT_MIN_HEALTHY = 2


class Status(str, Enum):
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


def summarize_services(
    instances: Iterable[Instance],
    thresholds: Thresholds,
    min_healthy: int = DEFAULT_MIN_HEALTHY,
) -> list[ServiceSummary]:
    """Per-service summaries sorted by service name.

    Instances whose service is not known (they could not be read at all) belong to no service and
    are left out; callers report them separately.
    """
    groups: dict[str, list[Instance]] = {}
    for instance in instances:
        if instance.service is not None:
            groups.setdefault(instance.service, []).append(instance)
    return [_summarize(name, groups[name], thresholds, min_healthy) for name in sorted(groups)]


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
    )


def under_replicated(summaries: Iterable[ServiceSummary]) -> list[ServiceSummary]:
    """The services flagged Unhealthy: fewer healthy instances than required, zero included."""
    return [summary for summary in summaries if summary.status is Status.UNHEALTHY]
