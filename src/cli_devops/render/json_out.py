"""Records as JSON: an array, one record per line."""

from __future__ import annotations

import json
from collections.abc import Sequence

from cli_devops.environment import Environment
from cli_devops.render.report import Record


def write_json(records: Sequence[Record], env: Environment) -> None:
    """A JSON array with one record per line: readable, greppable, and encoded by the json
    module's C encoder (``indent`` falls back to a pure-Python one, 4x slower at fleet size)."""
    if not records:
        env.stdout.write("[]\n")
        return
    lines = ",\n".join("  " + json.dumps(record) for record in records)
    env.stdout.write(f"[\n{lines}\n]\n")
