"""`top` in real terminals of the sizes people have (tmux at 80×24, 100×30 and 160×50), and the
keys a newcomer tries first, typed into a real terminal (pexpect)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pexpect
import pytest

from .conftest import hermetic_environ
from .test_top_terminal import ANSI, spawn_top

pytestmark = [pytest.mark.slow, pytest.mark.system]

FLEET_FULL = ["Status▼", "Service", "Healthy", "Unhealthy", "Unknown", "Outliers", "CPU avg",
              "Mem avg"]  # fmt: skip
FLEET_SHORT = ["Status▼", "Service", "Healthy", "Unh", "Unk", "Out", "CPU", "Mem"]


class Tmux:
    """One tmux session running a command in a terminal of a given size."""

    def __init__(self, name: str) -> None:
        self.name = name

    def screen(self) -> list[str]:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait(self, check: Callable[[list[str]], bool], timeout: float = 30) -> list[str]:
        """The screen once `check` holds for it; the test fails after `timeout` s (a hang)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            if check(lines):
                return lines
            assert time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.1)


@contextmanager
def tmux(command: str, columns: int, rows: int) -> Iterator[Tmux]:
    name = f"cli-devops-top-{os.getpid()}-{columns}x{rows}-{time.monotonic_ns()}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", str(columns), "-y", str(rows),
         f"{command}; sleep 60"],
        check=True, env=hermetic_environ(TERM="xterm-256color", PYTHONIOENCODING="utf-8"),
    )  # fmt: skip
    try:
        yield Tmux(name)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)


def line_with(lines: list[str], text: str) -> str:
    return next(line for line in lines if text in line)


@pytest.mark.parametrize(("columns", "rows"), [(80, 24), (100, 30), (160, 50)])
def test_every_header_the_footer_and_the_keys_fit(sim, columns, rows):
    command = f"{sys.executable} -m cli_devops top --cp-url {sim.url} --interval 0.3"
    with tmux(command, columns, rows) as term:
        fleet = term.wait(lambda s: any("q quit" in line for line in s)
                          and any("UserService" in line for line in s))  # fmt: skip
        term.keys("Enter")  # the worst service: MLService
        service = term.wait(lambda s: any("Fleet › MLService" in line for line in s)
                            and any("10.0.0.5" in line for line in s))  # fmt: skip
        term.keys("q")
    for screen in (fleet, service):
        assert re.search(r"poll \d+ at \d\d:\d\d:\d\d \(\d+s ago\) · every 0\.3s$",
                         screen[0].rstrip()), screen[0]  # fmt: skip
        assert screen[-1].rstrip().endswith("? help  q quit")
        assert re.fullmatch(r"5 healthy, 5 unhealthy, 0 unknown(?: of 10)?; 2 under-replicated"
                            r"(?: \(fewer than 2 healthy\))?; [0-9]+ outliers?",
                            screen[-2].strip()) or screen[-2].startswith("10 instances in 4 "
                            "services: 5 healthy"), screen[-2]  # fmt: skip
        assert not any("…" in line for line in screen), "\n".join(screen)
    titles = FLEET_FULL if columns >= 100 else FLEET_SHORT
    found = re.split(r"\s{2,}", line_with(fleet, "Status").replace(" trend", " ").strip())
    assert found == titles
    assert re.fullmatch(r"Unhealthy +MLService +0/2 +2 +0 +0 +\d+% +(\S+ +)?\d+%( +\S+)?",
                        line_with(fleet, "MLService").strip())  # fmt: skip
    header = line_with(service, "Status▼").split()
    stats, delta = ["min", "avg", "max"], ["Δ"] if columns >= 90 else []
    expected = ["IP", "Status▼", "CPU", *stats, *delta, "Mem", *stats, *delta, "Note"]
    assert [t for t in header if t != "trend"] == expected
