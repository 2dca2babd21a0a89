"""The `Report`: the data of one command's output (the records, the public JSON/CSV rows) and how
to lay them out as a table, built from the fleet and the health rules (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from cli_devops.health import ServiceSummary, Status, Thresholds, instance_status, outliers
from cli_devops.model import Instance
from cli_devops.text import plural

OutputFormat = Literal["table", "json", "csv"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("table", "json", "csv")

Record = dict[str, object]


class Output(NamedTuple):
    """How a one-shot command writes its report: the format, and whether tables and CSV have
    their header (and tables their summary) line."""

    format: OutputFormat = "table"
    headers: bool = True


class ReportColumn(NamedTuple):
    """A table column: `kind` is "text", "count", "percent" (a reading), "average" or "flag"
    (true shown as the column's key, false as nothing).

    In a terminal too narrow for the table, headers are first shortened to `short`, then
    `optional` columns are dropped, and only then are cells cut.
    """

    key: str
    header: str
    kind: str = "text"
    short: str | None = None
    optional: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "flag")


@dataclass
class Report:
    records: list[Record]
    fields: Sequence[str]
    columns: Sequence[ReportColumn]
    footer: str | None = None
    empty_message: str | None = None


INSTANCE_FIELDS = ("ip", "service", "status", "cpu", "memory", "error", "outlier")
INSTANCE_COLUMNS = (
    ReportColumn("ip", "IP"),
    ReportColumn("service", "Service"),
    ReportColumn("status", "Status"),
    ReportColumn("cpu", "CPU", kind="percent"),
    ReportColumn("memory", "Memory", kind="percent", short="Mem"),
)
REASON_COLUMN = ReportColumn("error", "Reason", optional=True)
NOTE_COLUMN = ReportColumn("outlier", "Note", kind="flag", optional=True)


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


SUMMARY_FIELDS = (
    "service", "instances", "healthy", "unhealthy", "unknown", "cpu_avg", "memory_avg", "status",
    "outliers",
)  # fmt: skip
SUMMARY_COLUMNS = (
    ReportColumn("service", "Service"),
    ReportColumn("instances", "Instances", kind="count", short="Inst"),
    ReportColumn("healthy", "Healthy", kind="count", short="OK"),
    ReportColumn("unhealthy", "Unhealthy", kind="count", short="Unh", optional=True),
    ReportColumn("unknown", "Unknown", kind="count", short="Unk", optional=True),
    ReportColumn("outliers", "Outliers", kind="count", short="Out", optional=True),
    ReportColumn("cpu_avg", "CPU avg", kind="average", short="CPU"),
    ReportColumn("memory_avg", "Memory avg", kind="average", short="Mem"),
    ReportColumn("status", "Status"),
)


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


FLAGGED_FIELDS = ("service", "healthy", "instances")
FLAGGED_COLUMNS = (
    ReportColumn("service", "Service"),
    ReportColumn("healthy", "Healthy", kind="count", short="OK"),
    ReportColumn("instances", "Instances", kind="count", short="Inst"),
)


def flagged_report(flagged: Sequence[ServiceSummary], min_healthy: int) -> Report:
    records: list[Record] = [
        {"service": s.service, "healthy": s.healthy, "instances": s.instances} for s in flagged
    ]
    footer = f"{plural(len(flagged), 'service')} with {_fewer_than(min_healthy)}"
    empty = f"No service has {_fewer_than(min_healthy)}."
    return Report(records, FLAGGED_FIELDS, FLAGGED_COLUMNS, footer if flagged else None, empty)


def _fewer_than(min_healthy: int) -> str:
    return f"fewer than {plural(min_healthy, 'healthy instance')}"
