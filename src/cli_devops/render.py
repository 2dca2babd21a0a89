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
from cli_devops.health import ServiceSummary, Status, Thresholds, instance_status, outliers
from cli_devops.model import Instance
from cli_devops.text import plural, terminal_safe

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


class Output(NamedTuple):
    """How a one-shot command writes its report: the format, and whether tables and CSV have
    their header (and tables their summary) line."""

    format: OutputFormat = "table"
    headers: bool = True


class Column(NamedTuple):
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
    columns: Sequence[Column]
    footer: str | None = None
    empty_message: str | None = None


INSTANCE_FIELDS = ("ip", "service", "status", "cpu", "memory", "error", "outlier")
INSTANCE_COLUMNS = (
    Column("ip", "IP"),
    Column("service", "Service"),
    Column("status", "Status"),
    Column("cpu", "CPU", kind="percent"),
    Column("memory", "Memory", kind="percent", short="Mem"),
)
REASON_COLUMN = Column("error", "Reason", optional=True)
NOTE_COLUMN = Column("outlier", "Note", kind="flag", optional=True)


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
    columns: tuple[Column, ...] = INSTANCE_COLUMNS
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
    Column("service", "Service"),
    Column("instances", "Instances", kind="count", short="Inst"),
    Column("healthy", "Healthy", kind="count", short="OK"),
    Column("unhealthy", "Unhealthy", kind="count", short="Unh", optional=True),
    Column("unknown", "Unknown", kind="count", short="Unk", optional=True),
    Column("outliers", "Outliers", kind="count", short="Out", optional=True),
    Column("cpu_avg", "CPU avg", kind="average", short="CPU"),
    Column("memory_avg", "Memory avg", kind="average", short="Mem"),
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
            "outliers": s.outliers,
        }
        for s in summaries
    ]
    flagged = sum(1 for s in summaries if s.status is Status.UNHEALTHY)
    footer = f"{plural(len(summaries), 'service')}, {flagged} with {_fewer_than(min_healthy)}"
    return Report(records, SUMMARY_FIELDS, SUMMARY_COLUMNS, footer, "No services found.")


FLAGGED_FIELDS = ("service", "healthy", "instances")
FLAGGED_COLUMNS = (
    Column("service", "Service"),
    Column("healthy", "Healthy", kind="count", short="OK"),
    Column("instances", "Instances", kind="count", short="Inst"),
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


def format_cell(value: object, column: Column) -> str:
    """Table text of one value: percentages rounded for reading, None as '-'."""
    if column.kind == "flag":
        return column.key if value else ""
    if value is None:
        return "-"
    if column.kind == "average" and isinstance(value, (int, float)):
        return f"{value:.1f}%"
    if column.kind == "percent" and isinstance(value, (int, float)):
        return f"{value:.0f}%" if float(value).is_integer() else f"{value:.1f}%"
    if isinstance(value, str):
        return terminal_safe(value)
    return str(value)


def write_report(
    report: Report, output: OutputFormat, env: Environment, *, headers: bool = True
) -> None:
    """Write `report` in `output`; without `headers`, tables and CSV have no header line and
    tables no summary line (for `sort`, `awk` and `wc -l`)."""
    if output == "json":
        write_json(report.records, env)
    elif output == "csv":
        write_csv(report.records, report.fields, env, header=headers)
    else:
        write_table(report, env, headers=headers)


class RecordWriter:
    """Output that grows one record at a time (`track` off a terminal): a JSON object per line
    (NDJSON), CSV rows with a `time` column and one header, or a timestamped table per poll."""

    def __init__(
        self, output: OutputFormat, env: Environment, thresholds: Thresholds, headers: bool = True
    ) -> None:
        self.output = output
        self.env = env
        self.thresholds = thresholds
        self.headers = headers
        self._first = True

    def write(
        self, stamp: str, service: str, instances: Sequence[Instance], error: str | None
    ) -> None:
        env = self.env
        flagged = outliers(instances)
        records = [
            instance_record(instance, self.thresholds, outlier=instance.ip in flagged)
            for instance in instances
        ]
        if self.output == "json":
            line = {"time": stamp, "service": service, "instances": records, "error": error}
            env.stdout.write(json.dumps(line) + "\n")
        elif self.output == "csv":
            rows = [{"time": stamp, **record} for record in records]
            header = self.headers and self._first
            write_csv(rows, ("time", *INSTANCE_FIELDS), env, header=header)
        else:
            failed = f"  (poll failed: {terminal_safe(error)})" if error else ""
            env.stdout.write(f"{stamp}  {terminal_safe(service)}{failed}\n")
            if not error:
                write_table(instances_report(instances, self.thresholds), env, headers=self.headers)
            env.stdout.write("\n")
        self._first = False
        env.stdout.flush()


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


def write_table(report: Report, env: Environment, *, headers: bool = True) -> None:
    """The table on stdout. Its summary line follows it on a terminal; on a pipe it goes to
    stderr, so that every line of stdout is a row."""
    if not report.records:
        if report.empty_message:
            (env.stdout if env.stdout_isatty else env.stderr).write(report.empty_message + "\n")
        return
    rows = [[format_cell(r.get(c.key), c) for c in report.columns] for r in report.records]
    console = make_console(env) if env.stdout_isatty and len(rows) <= RICH_MAX_ROWS else None
    if console is not None and supports_unicode(console):
        columns, rows = fit_columns(report.columns, rows, env.width)
        _write_rich_table(columns, rows, env.color, console, headers=headers)
    else:
        env.stdout.write(plain_table(report.columns, rows, headers=headers))
    if report.footer and headers:
        if env.stdout_isatty:
            env.stdout.write(report.footer + "\n")
        else:
            env.stdout.flush()
            env.stderr.write(report.footer + "\n")


def plain_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], *, headers: bool = True
) -> str:
    """Aligned columns without per-cell layout work: linear in the number of cells."""
    titles = [column.header for column in columns]
    widths = [len(title) for title in titles] if headers else [0] * len(columns)
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

    lines = [line(row) for row in rows]
    return "\n".join([line(titles), *lines] if headers else lines) + "\n"


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


def fit_columns(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, gap: int = 2
) -> tuple[list[Column], list[list[str]]]:
    """Columns and rows for a terminal `width` columns wide: as they are when they fit, else
    with short headers, else also without the optional columns (rightmost first); cells are
    cut only when even that is too wide."""
    keep = list(range(len(columns)))

    def need(indexes: Sequence[int], titles: Sequence[str]) -> int:
        widths = [max([len(titles[i]), *(len(row[i]) for row in rows)]) for i in indexes]
        return sum(widths) + gap * (len(indexes) - 1)

    titles = [column.header for column in columns]
    if need(keep, titles) > width:
        titles = [column.short or column.header for column in columns]
        for index in reversed(range(len(columns))):
            if need(keep, titles) <= width:
                break
            if columns[index].optional:
                keep.remove(index)
    fitted = [columns[i]._replace(header=titles[i]) for i in keep]
    return fitted, [[row[i] for i in keep] for row in rows]


def _write_rich_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    color: bool,
    console: Console,
    *,
    headers: bool = True,
) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False, show_header=headers)
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    status_index = next((i for i, column in enumerate(columns) if column.key == "status"), None)
    for row in rows:
        cells = [Text(cell) for cell in row]
        if status_index is not None and color:
            cells[status_index].stylize(STATUS_STYLES.get(row[status_index], ""))
        table.add_row(*cells)
    console.print(table)
