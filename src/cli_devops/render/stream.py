"""`RecordWriter`: the output of `track` off a terminal, one poll at a time."""

from __future__ import annotations

import json

from cli_devops.environment import Environment
from cli_devops.render.csv_out import write_csv
from cli_devops.render.report import INSTANCE_FIELDS, OutputFormat, Report
from cli_devops.render.table import write_table
from cli_devops.text import terminal_safe


class RecordWriter:
    """Output that grows one record at a time (`track` off a terminal): a JSON object per line
    (NDJSON), CSV rows with a `time` column and one header, or a timestamped table per poll.
    Each poll's `Report` is built by the caller (`instances_report`); this only formats it."""

    def __init__(self, output: OutputFormat, env: Environment, headers: bool = True) -> None:
        self.output = output
        self.env = env
        self.headers = headers
        self._first = True

    def write(self, stamp: str, service: str, report: Report, error: str | None) -> None:
        env = self.env
        records = report.records
        if self.output == "json":
            line = {"time": stamp, "service": service, "instances": list(records), "error": error}
            env.stdout.write(json.dumps(line) + "\n")
        elif self.output == "csv":
            rows = [{"time": stamp, **record} for record in records]
            header = self.headers and self._first
            write_csv(rows, ("time", *INSTANCE_FIELDS), env, header=header)
        else:
            failed = f"  (poll failed: {terminal_safe(error)})" if error else ""
            env.stdout.write(f"{stamp}  {terminal_safe(service)}{failed}\n")
            if not error:
                write_table(report, env, headers=self.headers)
            env.stdout.write("\n")
        self._first = False
        env.stdout.flush()
