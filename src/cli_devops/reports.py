"""Build, then show: each command's `Report` (statuses, outliers, summary line) built once from
the fleet and the health rules (pure), for the writers of `render` to format."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cli_devops.health import ServiceSummary, Status, Thresholds, instance_status, outliers
from cli_devops.model import Instance
from cli_devops.render.report import (
    FLAGGED_COLUMNS,
    FLAGGED_FIELDS,
    INSTANCE_COLUMNS,
    INSTANCE_FIELDS,
    NOTE_COLUMN,
    REASON_COLUMN,
    SUMMARY_COLUMNS,
    SUMMARY_FIELDS,
    Record,
    Report,
    ReportColumn,
)
from cli_devops.text import plural


def instance_record(instance: Instance, thresholds: Thresholds, *, outlier: bool = False) -> Record:
    return {
        "ip": instance.ip,
        "service": instance.service,
        "status": instance_status(instance, thresholds).value,
        "cpu": instance.cpu,
        "memory": instance.memory,
        "error": instance.error,
        "outlier": outlier,
    }


def instances_report(
    instances: Iterable[Instance], thresholds: Thresholds, flagged: set[str] | None = None
) -> Report:
    """`flagged`: the outliers' IPs, decided over whole services (`health.outliers`); when
    None they are decided over `instances`, which must then hold whole services."""
    instances = list(instances)
    if flagged is None:
        flagged = outliers(instances)
    records = [
        instance_record(instance, thresholds, outlier=instance.ip in flagged)
        for instance in instances
    ]
    counts = {status.value: 0 for status in Status}
    for record in records:
        counts[str(record["status"])] += 1
    columns: tuple[ReportColumn, ...] = INSTANCE_COLUMNS
    if any(record["outlier"] for record in records):
        columns = (*columns, NOTE_COLUMN)
    if any(record["error"] is not None for record in records):
        columns = (*columns, REASON_COLUMN)
    footer = (
        f"{plural(len(records), 'instance')}: {counts['Healthy']} healthy, "
        f"{counts['Unhealthy']} unhealthy, {counts['Unknown']} unknown"
    )
    return Report(records, INSTANCE_FIELDS, columns, footer, "No instances match.")


def status_report(summaries: Sequence[ServiceSummary], min_healthy: int) -> Report:
    records: list[Record] = [
        {
            "service": s.service,
            "instances": s.instances,
            "healthy": s.healthy,
            "unhealthy": s.unhealthy,
            "unknown": s.unknown,
            "cpu_avg": s.cpu_avg,
            "memory_avg": s.memory_avg,
            "status": s.status.value,
            "outliers": s.outliers,
        }
        for s in summaries
    ]
    flagged = sum(1 for s in summaries if s.status is Status.UNHEALTHY)
    footer = f"{plural(len(summaries), 'service')}, {flagged} with {_fewer_than(min_healthy)}"
    return Report(records, SUMMARY_FIELDS, SUMMARY_COLUMNS, footer, "No services found.")


def flagged_report(flagged: Sequence[ServiceSummary], min_healthy: int) -> Report:
    records: list[Record] = [
        {"service": s.service, "healthy": s.healthy, "instances": s.instances} for s in flagged
    ]
    footer = f"{plural(len(flagged), 'service')} with {_fewer_than(min_healthy)}"
    empty = f"No service has {_fewer_than(min_healthy)}."
    return Report(records, FLAGGED_FIELDS, FLAGGED_COLUMNS, footer if flagged else None, empty)


def _fewer_than(min_healthy: int) -> str:
    return f"fewer than {plural(min_healthy, 'healthy instance')}"
