"""`top` in real terminals of the sizes people have (tmux at 80×24, 100×30 and 160×50), and the
keys a newcomer tries first, typed into a real terminal (pexpect)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pexpect
import pytest

from .conftest import hermetic_environ
from .test_top_terminal import ANSI, spawn_top

pytestmark = [pytest.mark.slow, pytest.mark.system]

FLEET_FULL = ["Status▼", "Service", "Healthy", "Unhealthy", "Unknown", "Outliers", "CPU avg",
              "Mem avg"]  # fmt: skip
FLEET_SHORT = ["Status▼", "Service", "Healthy", "Unh", "Unk", "Out", "CPU", "Mem"]


class Tmux:
    """One tmux server of its own (tests run in parallel) running a command in a terminal of
    a given size."""

    def __init__(self, name: str) -> None:
        self.name = name

    def screen(self) -> list[str]:
        """The lines of the screen, without the blank ones at the bottom."""
        lines = subprocess.run(
            ["tmux", "-L", self.name, "capture-pane", "-p", "-t", self.name],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.name, "send-keys", "-t", self.name, *keys], check=True)

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
    env = hermetic_environ(TERM="xterm-256color", PYTHONIOENCODING="utf-8")
    for fixed in ("COLUMNS", "LINES"):  # they would override the terminal's own size
        env.pop(fixed, None)
    subprocess.run(
        ["tmux", "-L", name, "-f", "/dev/null", "new-session", "-d", "-s", name,
         "-x", str(columns), "-y", str(rows), f"{command}; sleep 60"],
        check=True, env=env,
    )  # fmt: skip
    try:
        yield Tmux(name)
    finally:
        subprocess.run(["tmux", "-L", name, "kill-server"], check=False)


def line_with(lines: list[str], text: str) -> str:
    return next(line for line in lines if text in line)


def titles_of(screen: list[str]) -> list[str]:
    """The column titles of the fleet's table (two spaces or more between them)."""
    header = next((line for line in screen if line.startswith("Status")), "")
    return re.split(r"\s{2,}", header.replace(" trend", " ").strip())


@pytest.mark.parametrize(("columns", "rows"), [(80, 24), (100, 30), (160, 50)])
def test_every_header_the_footer_and_the_keys_fit(sim, columns, rows):
    command = f"{sys.executable} -m cli_devops top --cp-url {sim.url} --interval 0.3"
    with tmux(command, columns, rows) as term:
        titles = FLEET_FULL if columns >= 100 else FLEET_SHORT
        fleet = term.wait(lambda s: len(s) > 2 and s[-1].endswith("q quit") and s[-2].strip() != ""
                          and any("UserService" in line for line in s)
                          and titles_of(s) == titles)  # fmt: skip
        term.keys("Enter")  # the worst service: MLService
        service = term.wait(lambda s: any("Fleet › MLService" in line for line in s)
                            and any("10.0.0.5" in line for line in s)
                            and len(s) > 2 and s[-1].endswith("q quit")
                            and s[-2].strip() != "")  # fmt: skip
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
    assert re.fullmatch(r"Unhealthy +MLService +0/2 +2 +0 +0 +\d+% +(\S+ +)?\d+%( +\S+)?",
                        line_with(fleet, "MLService").strip())  # fmt: skip
    header = line_with(service, "Status▼").split()
    stats, delta = ["min", "avg", "max"], ["Δ"] if columns >= 90 else []
    expected = ["IP", "Status▼", "CPU", *stats, *delta, "Mem", *stats, *delta, "Note"]
    assert [t for t in header if t != "trend"] == expected


def shown(child: pexpect.spawn, transcript: io.StringIO, mark: int, *texts: str) -> None:
    """Read the terminal until every one of `texts` was drawn after `mark` (ANSI codes
    removed); the test fails after 30 s (a hang)."""
    deadline = time.monotonic() + 30
    while not all(text in ANSI.sub("", transcript.getvalue()[mark:]) for text in texts):
        assert time.monotonic() < deadline, ANSI.sub("", transcript.getvalue()[mark:])[-3000:]
        with suppress(pexpect.TIMEOUT):
            child.read_nonblocking(1 << 20, timeout=0.5)  # whatever was drawn, all of it


def test_keys_typed_in_one_burst_reach_the_filter_in_order(sim):
    child, transcript = spawn_top("top", "--cp-url", sim.url, "--interval", "0.3")
    try:
        child.expect("10 instances in 4 services")
        for _ in range(3):  # the defect lost them every time
            mark = len(transcript.getvalue())
            child.send("/" + "xyz" + "\x7f" * 12 + "Geo" + "\r")  # one write
            shown(child, transcript, mark, "filter: Geo  1 of 4 rows")
            mark = len(transcript.getvalue())
            child.send("\x1b")  # Esc clears it
            shown(child, transcript, mark, "Fleet  4 rows")
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_escape_clears_an_active_filter_and_q_closes_the_help(sim):
    with tmux(f"{sys.executable} -m cli_devops top --cp-url {sim.url} --interval 0.3", 100,
              30) as term:  # fmt: skip
        term.wait(lambda s: any("q quit" in line for line in s))
        term.keys("/", "geo", "Enter")
        term.wait(lambda s: any("filter: geo" in line for line in s))
        term.keys("Escape")
        lines = term.wait(lambda s: not any("filter:" in line for line in s))
        assert any("UserService" in line for line in lines)  # every service again
        assert any(line.startswith("Fleet  4 rows") for line in lines)  # still the fleet
        term.keys("?")
        term.wait(lambda s: any("closes this help" in line for line in s))
        term.keys("q")
        lines = term.wait(lambda s: not any("closes this help" in line for line in s))
        assert any("q quit" in line for line in lines)  # the help closed, the console runs
        term.keys("q")
        term.wait(lambda s: not any("q quit" in line for line in s))


def test_replay_of_a_file_that_is_not_a_recording_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# cli_devops\n\nSee the health of your CPX fleet.\n")
    child, transcript = spawn_top("top", "--replay", str(readme))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    output = ANSI.sub("", transcript.getvalue())
    assert output.strip() == (
        f"cli_devops: error: {readme} is not a recording of top: none of its lines is a "
        "recorded poll"
    )
    assert "\x1b[?1049h" not in transcript.getvalue()  # no console was opened
