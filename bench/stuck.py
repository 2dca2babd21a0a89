"""Case 5 of `run.py`: fleets that are stuck, not congested, against a fixed `--concurrency 64`.

* Hung fleet: every instance accepts the connection and never answers (`--timeout 1
  --retries 1`). The adaptive limit must not treat the timeouts as congestion and collapse to
  one request at a time (40 hung instances took 202 s at default settings in 0.2.0).
* 429 fleet: every instance answers 429 with `Retry-After: 2`. A retry's backoff sleep must not
  hold a slot (150 instances with `Retry-After: 9` took 280 s in 0.2.0, 3.8 s at 64).

The stand-in is the tests' hostile server (`python -m tests.hostile`), in its own process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def hostile(fleet: int, mode: str, *extra: str) -> Iterator[str]:
    """`python -m tests.hostile` in its own process; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile", "--fleet", str(fleet), "--mode", mode, *extra],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        found = re.search(r"http://\S+", process.stdout.readline())
        if not found:
            raise RuntimeError("the hostile server did not start")
        yield found.group(0)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def case_stuck_fleets(fleet: int, runs: int, cli: list[str], bench: ModuleType) -> list[object]:
    """Rows: default (adaptive) and `--concurrency 64` for each stuck fleet, as ratios."""
    rows: list[object] = []
    cases = [
        ("hang", ["--timeout", "1", "--retries", "1"], ()),
        ("429", [], ("--retry-after", "2")),
    ]
    for mode, options, extra in cases:
        case = f"5. {fleet} instances, {'all hung' if mode == 'hang' else 'all 429'}"
        try:
            serving = hostile(fleet, mode, *extra)
            url = serving.__enter__()
        except RuntimeError as err:
            raise bench.BenchError(str(err)) from None
        try:
            base = ["--cp-url", url, *options, "services", "-o", "json"]
            default = bench.Variant("cli_devops default (adaptive)", [*cli, *base], None, fleet)
            fixed = bench.Variant(
                "cli_devops --concurrency 64", [*cli, "--concurrency", "64", *base], None, fleet
            )
            bench.take_turns([default, fixed], runs)
        finally:
            serving.__exit__(None, None, None)
        ratio = default.seconds / fixed.seconds
        rows += [
            bench.Row(case, fixed.name, bench.secs(fixed.seconds)),
            bench.Row(case, default.name, bench.secs(default.seconds),
                      f"{bench.times(ratio)} fixed 64", "<= 1.5x", bench.verdict(ratio <= 1.5)),
        ]  # fmt: skip
    return rows
