"""Build, then show: each command's `Report` (statuses, outliers, summary line) built once from
the fleet and the health rules (pure), for the writers of `render` to format."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from operator import attrgetter

from cli_devops.health import ServiceSummary, Status, Thresholds, instance_status, outliers
from cli_devops.model import Instance, InstanceList
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
from cli_devops.render.runs import RecordRun, RecordRuns
from cli_devops.text import plural

_RUN_KEY = attrgetter("service", "cpu", "memory", "error")
_IP = attrgetter("ip")


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
    if not isinstance(instances, Sequence):
        instances = list(instances)
    if flagged is None:
        flagged = outliers(instances)
    records = instance_runs(instances, thresholds, flagged)
    counts = {status.value: 0 for status in Status}
    for run in records.runs:
        counts[str(run.fields["status"])] += len(run.ips)
    columns: tuple[ReportColumn, ...] = INSTANCE_COLUMNS
    if any(run.fields["outlier"] for run in records.runs):
        columns = (*columns, NOTE_COLUMN)
    if any(run.fields["error"] is not None for run in records.runs):
        columns = (*columns, REASON_COLUMN)
    footer = (
        f"{plural(len(records), 'instance')}: {counts['Healthy']} healthy, "
        f"{counts['Unhealthy']} unhealthy, {counts['Unknown']} unknown"
    )
    return Report(records, INSTANCE_FIELDS, columns, footer, "No instances match.")


def instance_runs(
    instances: Iterable[Instance], thresholds: Thresholds, flagged: set[str]
) -> RecordRuns:
    """The `instance_record`s of `instances`, in their order, as runs; `flagged` holds the
    outliers' IPs. The unrequested instances of an `InstanceList` are one run, made from their
    IPs as they are."""
    runs: list[RecordRun] = []
    tail: InstanceList | None = None
    if isinstance(instances, InstanceList) and instances.unrequested:
        tail, instances = instances, instances.requested
    for key, group in itertools.groupby(instances, _RUN_KEY):
        ips = list(map(_IP, group))
        fields = instance_record(Instance(ips[0], *key), thresholds)
        del fields["ip"]
        if not flagged:
            runs.append(RecordRun(ips, fields))
            continue
        for outlier, members in itertools.groupby(ips, flagged.__contains__):
            runs.append(RecordRun(list(members), {**fields, "outlier": outlier}))
    if tail is not None:
        fields = instance_record(tail[len(tail.requested)], thresholds)
        del fields["ip"]
        runs.append(RecordRun(list(tail.unrequested), fields))
    return RecordRuns(runs)


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
