"""Records as CSV: the report's fields as columns, strings made terminal-safe."""

from __future__ import annotations

import csv
from collections.abc import Sequence

from cli_devops.environment import Environment
from cli_devops.render.report import Record
from cli_devops.text import terminal_safe


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
