"""Records as JSON: an array, one record per line."""

from __future__ import annotations

import json
from collections.abc import Sequence

from cli_devops.environment import Environment
from cli_devops.render.report import Record
from cli_devops.render.runs import run_pieces


def write_json(records: Sequence[Record], env: Environment) -> None:
    """A JSON array with one record per line: readable, greppable, and encoded by the json
    module's C encoder (``indent`` falls back to a pure-Python one, 4x slower at fleet size);
    a run of records alike but for the IP is encoded once (`runs.run_pieces`)."""
    if not records:
        env.stdout.write("[]\n")
        return
    separator = "[\n"
    for piece in run_pieces(records, _json_line, ",\n"):
        env.stdout.write(separator)
        env.stdout.write(piece)
        separator = ",\n"
    env.stdout.write("\n]\n")


def _json_line(record: Record) -> str:
    return "  " + json.dumps(record)
