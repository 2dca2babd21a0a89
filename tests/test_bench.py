"""The benchmark must keep running: its quick mode (small sizes, one run each) as a smoke test.

No timing is asserted (machines are shared and noisy); every case must run to completion and
print its rows. The simulator capacity row runs wrk for a second per setting when it is installed
(`make check` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.mark.timeout(600)  # every case, one run each: about a minute, more on a busy machine
def test_quick_benchmark_runs_every_case_and_prints_the_table():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in done.stdout.splitlines()
        if line.startswith("| ")
    ]
    assert rows[0] == ["case", "measure", "median", "ratio", "target", "met"]
    measures = {(row[0], row[1]) for row in rows}
    for expected in [
        ("4. start-up", "cli_devops --help"),
        ("4. start-up", "cli_devops --version"),
        ("6. 5,000 instances", "--deadline 2 services -o json, all hung"),
        ("1. 300 inst, 5 ms", "cli_devops -o json (default settings)"),
        ("1. 300 inst, 5 ms", "cli_devops table, piped to a file"),
        ("1. 300 inst, 5 ms", "original approach: 5 threads, new connection each"),
        ("2. 0 ms", "200 instances: requests/s past start-up"),
        ("2. 0 ms", "2,000 instances: peak RSS"),
        ("3. reference-like, 150", "cli_devops default (adaptive)"),
        ("3. reference-like, 150", "cli_devops --concurrency 64"),
        ("3. reference-like, 150", "sequential client (standard library)"),
        ("track live view", "one redraw, 300 instances"),
        ("5. 40 instances, all hung", "cli_devops default (adaptive)"),
        ("5. 40 instances, all hung", "cli_devops --concurrency 64"),
        ("5. 40 instances, all 429", "cli_devops default (adaptive)"),
        ("5. 40 instances, all 429", "cli_devops --concurrency 64"),
    ]:
        assert expected in measures, done.stdout
    top = [row[1] for row in rows if row[0] == "top console"]
    for start in ("move the cursor, 300 instances", "apply or clear a filter",
                  "drill into the largest service", "move in that service",
                  "back to the fleet", "own CPU at a 5 s interval",
                  "RSS after 5 and after 20 polls of 300 instances"):  # fmt: skip
        assert any(measure.startswith(start) for measure in top), top
    contexts = [row[1] for row in rows if row[0] == "top, every context"]
    for start in ("move the cursor, 3 contexts of 300 instances", "apply or clear a filter",
                  "drill into the largest service", "back to the fleet",
                  "own CPU at a 5 s interval, 3 contexts of 300 instances"):  # fmt: skip
        assert any(measure.startswith(start) for measure in contexts), contexts
    capacity = {row[1]: row[2] for row in rows if row[0] == "simulator capacity"}
    if shutil.which("wrk") is None:
        assert capacity == {"requests/s under wrk": "skipped: install wrk (apt-get install wrk)"}
    else:
        assert re.fullmatch(r"[\d,]+/s", capacity["wrk, 200 instances, 1 worker"]), capacity
        workers = [measure for measure in capacity if measure.endswith(" workers")]
        assert len(workers) == (1 if (os.cpu_count() or 1) > 1 else 0), capacity
        assert all(re.fullmatch(r"[\d,]+/s", capacity[measure]) for measure in workers), capacity
    # Quick sizes are too small for the targets: no verdict is claimed.
    assert {row[5] for row in rows[2:]} <= {"-", ""}, done.stdout


def test_the_test_command_installs_wrk_for_the_capacity_row():
    makefile = (BENCH.parent.parent / "Makefile").read_text()
    assert "wrk" in makefile.split("\ncheck:", 1)[1].split("\n", 1)[0].split()
    assert "if ! command -v wrk" in makefile
    assert "apt-get install -y --no-install-recommends wrk" in makefile


def test_quick_prometheus_source_benchmark_reads_the_fleet_without_cpx():
    done = subprocess.run(
        [sys.executable, str(BENCH.with_name("prometheus_source.py")), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {
        tuple(cell.strip() for cell in line.strip().strip("|").split("|"))[1]: line
        for line in done.stdout.splitlines()
        if line.startswith("| status")
    }
    assert (
        "| CPX requests, Prometheus read | 0 |  | 0 | yes |"
        in rows["CPX requests, Prometheus read"]
    )
    assert re.search(r"\| [\d.]+x CPX \|", rows["from Prometheus: time"]), rows
