"""Build what a command shows (pure), then write it as a table, JSON or CSV.

A `Report` is the data of one command's output: the records (the public JSON/CSV rows) and how
to lay them out as a table. `write_report` is the only place that knows the three formats.
Strings from the API are made terminal-safe for tables and CSV; JSON keeps them, escaped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from cli_devops.environment import Environment
from cli_devops.health import ServiceSummary, Status, Thresholds, instance_status
from cli_devops.model import Instance

if TYPE_CHECKING:
    from rich.console import Console

OutputFormat = Literal["table", "json", "csv"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("table", "json", "csv")

RICH_MAX_ROWS = 500
"""Above this many rows a terminal table is laid out as plain text: rich's per-cell layout cost
grows with the row count and would dominate a large fleet's run."""

STATUS_STYLES = {
    Status.HEALTHY.value: "green",
    Status.UNHEALTHY.value: "bold red",
    Status.UNKNOWN.value: "yellow",
}

Record = dict[str, object]


class Column(NamedTuple):
    """A table column: `kind` is "text", "count", "percent" (a reading) or "average"."""

    key: str
    header: str
    kind: str = "text"

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


@dataclass
class Report:
    records: list[Record]
    fields: Sequence[str]
    columns: Sequence[Column]
    footer: str | None = None
    empty_message: str | None = None


INSTANCE_FIELDS = ("ip", "service", "status", "cpu", "memory", "error")
INSTANCE_COLUMNS = (
    Column("ip", "IP"),
    Column("service", "Service"),
    Column("status", "Status"),
    Column("cpu", "CPU", kind="percent"),
    Column("memory", "Memory", kind="percent"),
)
REASON_COLUMN = Column("error", "Reason")


def terminal_safe(text: str) -> str:
    """Drop control, format and other non-printable characters (escape sequences, bidi
    overrides, line breaks) so an API string can never move the cursor or rewrite the screen."""
    if text.isprintable():
        return text
    return "".join(char for char in text if char.isprintable())


def instance_record(instance: Instance, thresholds: Thresholds) -> Record:
    return {
        "ip": instance.ip,
        "service": instance.service,
        "status": instance_status(instance, thresholds).value,
        "cpu": instance.cpu,
        "memory": instance.memory,
        "error": instance.error,
    }


def instances_report(instances: Iterable[Instance], thresholds: Thresholds) -> Report:
    records = [instance_record(instance, thresholds) for instance in instances]
    counts = {status.value: 0 for status in Status}
    for record in records:
        counts[str(record["status"])] += 1
    columns: tuple[Column, ...] = INSTANCE_COLUMNS
    if any(record["error"] is not None for record in records):
        columns = (*INSTANCE_COLUMNS, REASON_COLUMN)
    footer = (
        f"{len(records)} instances: {counts['Healthy']} healthy, "
        f"{counts['Unhealthy']} unhealthy, {counts['Unknown']} unknown"
    )
    return Report(records, INSTANCE_FIELDS, columns, footer, "No instances match.")


SUMMARY_FIELDS = (
    "service", "instances", "healthy", "unhealthy", "unknown", "cpu_avg", "memory_avg", "status",
)  # fmt: skip
SUMMARY_COLUMNS = (
    Column("service", "Service"),
    Column("instances", "Instances", kind="count"),
    Column("healthy", "Healthy", kind="count"),
    Column("unhealthy", "Unhealthy", kind="count"),
    Column("unknown", "Unknown", kind="count"),
    Column("cpu_avg", "CPU avg", kind="average"),
    Column("memory_avg", "Memory avg", kind="average"),
    Column("status", "Status"),
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
        }
        for s in summaries
    ]
    flagged = sum(1 for s in summaries if s.status is Status.UNHEALTHY)
    footer = f"{len(summaries)} services, {flagged} with fewer than {min_healthy} healthy instances"
    return Report(records, SUMMARY_FIELDS, SUMMARY_COLUMNS, footer, "No services found.")


FLAGGED_FIELDS = ("service", "healthy", "instances")
FLAGGED_COLUMNS = (
    Column("service", "Service"),
    Column("healthy", "Healthy", kind="count"),
    Column("instances", "Instances", kind="count"),
)


def flagged_report(flagged: Sequence[ServiceSummary], min_healthy: int) -> Report:
    records: list[Record] = [
        {"service": s.service, "healthy": s.healthy, "instances": s.instances} for s in flagged
    ]
    footer = f"{len(flagged)} services with fewer than {min_healthy} healthy instances"
    empty = f"No service has fewer than {min_healthy} healthy instances."
    return Report(records, FLAGGED_FIELDS, FLAGGED_COLUMNS, footer if flagged else None, empty)


def format_cell(value: object, column: Column) -> str:
    """Table text of one value: percentages rounded for reading, None as '-'."""
    if value is None:
        return "-"
    if column.kind == "average" and isinstance(value, (int, float)):
        return f"{value:.1f}%"
    if column.kind == "percent" and isinstance(value, (int, float)):
        return f"{value:.0f}%" if float(value).is_integer() else f"{value:.1f}%"
    if isinstance(value, str):
        return terminal_safe(value)
    return str(value)


def write_report(report: Report, output: OutputFormat, env: Environment) -> None:
    if output == "json":
        write_json(report.records, env)
    elif output == "csv":
        write_csv(report.records, report.fields, env)
    else:
        write_table(report, env)


def write_json(records: Sequence[Record], env: Environment) -> None:
    """A JSON array with one record per line: readable, greppable, and encoded by the json
    module's C encoder (``indent`` falls back to a pure-Python one, 4x slower at fleet size)."""
    if not records:
        env.stdout.write("[]\n")
        return
    lines = ",\n".join("  " + json.dumps(record) for record in records)
    env.stdout.write(f"[\n{lines}\n]\n")


def write_csv(
    records: Sequence[Record], fields: Sequence[str], env: Environment, *, header: bool = True
) -> None:
    writer = csv.writer(env.stdout, lineterminator="\n")
    if header:
        writer.writerow(fields)
    for record in records:
        writer.writerow([csv_cell(record.get(field)) for field in fields])


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return terminal_safe(value)
    return str(value)


def write_table(report: Report, env: Environment) -> None:
    if not report.records:
        if report.empty_message:
            env.stdout.write(report.empty_message + "\n")
        return
    rows = [[format_cell(r.get(c.key), c) for c in report.columns] for r in report.records]
    console = make_console(env) if env.stdout_isatty and len(rows) <= RICH_MAX_ROWS else None
    if console is not None and supports_unicode(console):
        _write_rich_table(report, rows, env.color, console)
    else:
        env.stdout.write(plain_table(report.columns, rows))
    if report.footer:
        env.stdout.write(report.footer + "\n")


def plain_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns without per-cell layout work: linear in the number of cells."""
    headers = [column.header for column in columns]
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    last = len(columns) - 1

    def line(cells: Sequence[str]) -> str:
        parts = []
        for index, (cell, column) in enumerate(zip(cells, columns)):
            if column.numeric:
                parts.append(cell.rjust(widths[index]))
            elif index == last:
                parts.append(cell)
            else:
                parts.append(cell.ljust(widths[index]))
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers)] + [line(row) for row in rows]) + "\n"


def make_console(env: Environment, *, follow_resizes: bool = False) -> Console:
    """A rich console on `env.stdout`: colour only if `env.color`; at `env.width`, or at the
    terminal's current width each time it renders when `follow_resizes` (the live view)."""
    from rich.console import Console

    return Console(
        file=env.stdout,
        force_terminal=env.stdout_isatty,
        no_color=not env.color,
        color_system="auto" if env.color else None,
        width=None if follow_resizes else env.width,
        highlight=False,
    )


def supports_unicode(console: Console) -> bool:
    """Whether the terminal's encoding takes what rich draws (ellipses, sparklines); on one
    that does not (an ASCII locale), printing them would fail."""
    return console.encoding.lower().startswith("utf")


def _write_rich_table(
    report: Report, rows: Sequence[Sequence[str]], color: bool, console: Console
) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in report.columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    status_index = next(
        (i for i, column in enumerate(report.columns) if column.key == "status"), None
    )
    for row in rows:
        cells = [Text(cell) for cell in row]
        if status_index is not None and color:
            cells[status_index].stylize(STATUS_STYLES.get(row[status_index], ""))
        table.add_row(*cells)
    console.print(table)
