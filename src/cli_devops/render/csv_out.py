"""Records as CSV: the report's fields as columns, strings made terminal-safe."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from cli_devops.environment import Environment
from cli_devops.render.report import Record
from cli_devops.render.runs import run_pieces
from cli_devops.text import terminal_safe


def write_csv(
    records: Sequence[Record], fields: Sequence[str], env: Environment, *, header: bool = True
) -> None:
    if header:
        csv.writer(env.stdout, lineterminator="\n").writerow(fields)
    line = io.StringIO()
    writer = csv.writer(line, lineterminator="\n")

    def row(record: Record) -> str:
        line.seek(0)
        line.truncate()
        writer.writerow([csv_cell(record.get(field)) for field in fields])
        return line.getvalue()

    for piece in run_pieces(records, row, ""):
        env.stdout.write(piece)


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # as JSON writes it, not Python's True/False
        return "true" if value else "false"
    if isinstance(value, str):
        return terminal_safe(value)
    return str(value)
