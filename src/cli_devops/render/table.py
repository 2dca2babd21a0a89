"""A `Report` as a table: rich on a terminal, aligned plain text on a pipe or past
`RICH_MAX_ROWS`; headers shortened and optional columns dropped to fit the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cli_devops.environment import Environment
from cli_devops.render.report import Report, ReportColumn
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
    columns: Sequence[ReportColumn], rows: Sequence[Sequence[str]], *, headers: bool = True
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
        for index, (cell, column) in enumerate(zip(cells, columns, strict=False)):
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
