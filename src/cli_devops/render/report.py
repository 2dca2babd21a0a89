"""The `Report`: the data of one command's output (the records, the public JSON/CSV rows) and how
to lay them out as a table; `reports.py` builds them, the writers format them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

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
    records: Sequence[Record]
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

FLAGGED_FIELDS = ("service", "healthy", "instances")
FLAGGED_COLUMNS = (
    ReportColumn("service", "Service"),
    ReportColumn("healthy", "Healthy", kind="count", short="OK"),
    ReportColumn("instances", "Instances", kind="count", short="Inst"),
)
