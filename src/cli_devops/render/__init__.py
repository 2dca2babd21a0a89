"""Show what a command built (`reports.py`): its `Report` written as a table, JSON or CSV.

* `report.py`: the `Report` type (records + table layout) and each report's fields and columns;
* `table.py`, `json_out.py`, `csv_out.py`: one output format each;
* `stream.py`: `RecordWriter`, the per-poll output of `track` off a terminal.

`write_report` is the only place that knows the three formats. Strings from the API are made
terminal-safe for tables and CSV; JSON keeps them, escaped.
"""

from __future__ import annotations

from cli_devops.environment import Environment
from cli_devops.render.csv_out import write_csv
from cli_devops.render.json_out import write_json
from cli_devops.render.report import (
    OUTPUT_FORMATS,
    Output,
    OutputFormat,
    Record,
    Report,
    ReportColumn,
)
from cli_devops.render.stream import RecordWriter
from cli_devops.render.table import STATUS_STYLES, make_console, supports_unicode, write_table

__all__ = [
    "OUTPUT_FORMATS",
    "STATUS_STYLES",
    "Output",
    "OutputFormat",
    "Record",
    "RecordWriter",
    "Report",
    "ReportColumn",
    "make_console",
    "supports_unicode",
    "write_csv",
    "write_json",
    "write_report",
    "write_table",
]


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
