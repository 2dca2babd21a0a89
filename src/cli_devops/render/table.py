"""A `Report` as a table: rich on a terminal, aligned plain text on a pipe or past
`RICH_MAX_ROWS`; headers shortened and optional columns dropped to fit the terminal."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from cli_devops.environment import Environment
from cli_devops.render.report import Report, ReportColumn
from cli_devops.render.runs import CHUNK, PLAIN_IP, RecordRuns
from cli_devops.text import terminal_safe

if TYPE_CHECKING:
    from rich.console import Console

RICH_MAX_ROWS = 500
"""Above this many rows a terminal table is laid out as plain text: rich's per-cell layout cost
grows with the row count and would dominate a large fleet's run."""

STATUS_STYLES = {"Healthy": "green", "Unhealthy": "bold red", "Unknown": "yellow"}
"""The colour of each status a report carries (the health rules decided it before)."""


def format_cell(value: object, column: ReportColumn) -> str:
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


def write_table(report: Report, env: Environment, *, headers: bool = True) -> None:
    """The table on stdout. Its summary line follows it on a terminal; on a pipe it goes to
    stderr, so that every line of stdout is a row."""
    if not report.records:
        if report.empty_message:
            (env.stdout if env.stdout_isatty else env.stderr).write(report.empty_message + "\n")
        return
    records = report.records
    small = env.stdout_isatty and len(records) <= RICH_MAX_ROWS
    if isinstance(records, RecordRuns) and not small and _runs_fit(report.columns):
        for piece in _plain_runs(report.columns, records, headers=headers):
            env.stdout.write(piece)
        _write_footer(report, env, headers=headers)
        return
    rows = [[format_cell(r.get(c.key), c) for c in report.columns] for r in records]
    console = make_console(env) if small else None
    if console is not None and supports_unicode(console):
        columns, rows = fit_columns(report.columns, rows, env.width)
        _write_rich_table(columns, rows, env.color, console, headers=headers)
    else:
        env.stdout.write(plain_table(report.columns, rows, headers=headers))
    _write_footer(report, env, headers=headers)


def _write_footer(report: Report, env: Environment, *, headers: bool) -> None:
    if report.footer and headers:
        if env.stdout_isatty:
            env.stdout.write(report.footer + "\n")
        else:
            env.stdout.flush()
            env.stderr.write(report.footer + "\n")


def plain_table(
    columns: Sequence[ReportColumn], rows: Sequence[Sequence[str]], *, headers: bool = True
) -> str:
    """Aligned columns without per-cell layout work: linear in the number of cells."""
    titles = [column.header for column in columns]
    widths = [len(title) for title in titles] if headers else [0] * len(columns)
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    line = _line_of(columns, widths)
    lines = [line(row) for row in rows]
    return "\n".join([line(titles), *lines] if headers else lines) + "\n"


def _runs_fit(columns: Sequence[ReportColumn]) -> bool:
    """Whether `_plain_runs` can lay out these columns: the IP first, left-aligned, not alone."""
    return len(columns) > 1 and columns[0].key == "ip" and not columns[0].numeric


def _plain_runs(
    columns: Sequence[ReportColumn], records: RecordRuns, *, headers: bool
) -> Iterator[str]:
    """`plain_table` of records held as runs: a run's line after the IP is laid out once and its
    IPs joined in by a C loop, in pieces of up to CHUNK lines."""
    rest = [[format_cell(run.fields.get(c.key), c) for c in columns[1:]] for run in records.runs]
    plain = [bool(PLAIN_IP.fullmatch("".join(run.ips))) for run in records.runs]
    titles = [column.header for column in columns]
    widths = [len(title) for title in titles] if headers else [0] * len(columns)
    for run, cells, is_plain in zip(records.runs, rest, plain, strict=True):
        ips = run.ips if is_plain else map(terminal_safe, run.ips)
        longest = max(map(len, ips))
        widths[0] = max(widths[0], longest)
        for index, cell in enumerate(cells, start=1):
            widths[index] = max(widths[index], len(cell))
    line = _line_of(columns, widths)
    if headers:
        yield line(titles) + "\n"
    for run, cells, is_plain in zip(records.runs, rest, plain, strict=True):
        if not is_plain:
            yield "".join(line([terminal_safe(ip), *cells]) + "\n" for ip in run.ips)
            continue
        after = line(["", *cells])[widths[0] :]  # the gap and the cells after the IP, or nothing
        for start in range(0, len(run.ips), CHUNK):
            ips = run.ips[start : start + CHUNK]
            padded = map(str.ljust, ips, itertools.repeat(widths[0])) if after else ips
            yield (after + "\n").join(padded) + after + "\n"


def _line_of(
    columns: Sequence[ReportColumn], widths: Sequence[int]
) -> Callable[[Sequence[str]], str]:
    """The aligned line of a row's cells at these column widths."""
    last = len(columns) - 1

    def line(cells: Sequence[str]) -> str:
        parts = []
        for index, (cell, column) in enumerate(zip(cells, columns, strict=False)):
            if column.numeric:
                parts.append(cell.rjust(widths[index]))
            elif index == last:
                parts.append(cell)
            else:
                parts.append(cell.ljust(widths[index]))
        return "  ".join(parts).rstrip()

    return line


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
    columns: Sequence[ReportColumn], rows: Sequence[Sequence[str]], width: int, gap: int = 2
) -> tuple[list[ReportColumn], list[list[str]]]:
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
    columns: Sequence[ReportColumn],
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
