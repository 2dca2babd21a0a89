"""The transient progress line of a long read: on a terminal's stderr only, gone when done."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pexpect
import pytest

from cli_devops.client import ReadProgress
from cli_devops.progress import describe

from .conftest import hermetic_environ
from .hostile import HostileCpx, Reply, ips, slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def in_terminal(*args: str) -> tuple[int, str]:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli_devops", *args],
        env={**hermetic_environ(), "TERM": "xterm", "PYTHONIOENCODING": "utf-8"},
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=60,
    )
    output = child.read()
    child.close()
    return int(child.exitstatus or 0), ANSI.sub("", output)


@pytest.mark.slow
@pytest.mark.system
def test_a_long_read_shows_its_progress_on_a_terminal_and_erases_it():
    with HostileCpx(ips(120), slow(0.05)) as api:
        code, output = in_terminal("--cp-url", api.url, "--concurrency", "2", "services")
    assert code == 0, output
    shown = [int(n) for n in re.findall(r"read (\d+) of 120 instances \(\d+s\)", output)]
    assert shown, output
    assert shown == sorted(shown)
    assert 0 < shown[0] < 120
    assert output.rstrip().splitlines()[-1].startswith("120 instances: 120 healthy")


@pytest.mark.slow
@pytest.mark.system
def test_a_hung_listing_says_which_attempt_it_is_on():
    with HostileCpx([], servers_reply=Reply("hang")) as api:
        code, output = in_terminal(
            "--cp-url", api.url, "--timeout", "1", "--retries", "2", "services"
        )
    assert code == 3
    assert "reading the list of instances, attempt 2…" in output
    expected = (
        f"cannot read the CPX API at {api.url}/servers: timed out after 1s (after 3 attempts)"
    )
    assert expected in output


@pytest.mark.slow
@pytest.mark.system
@pytest.mark.parametrize(
    "how", ["json in a terminal", "table with stderr piped", "debug in a terminal"]
)
def test_no_progress_line_for_scripts_pipes_or_debug(how):
    with HostileCpx(ips(60), slow(0.05)) as api:
        base = ["--cp-url", api.url, "--concurrency", "1", "services"]
        if how == "json in a terminal":
            _, output = in_terminal(*base, "-o", "json")
        elif how == "debug in a terminal":
            _, output = in_terminal(*base, "--debug")
        else:
            done = subprocess.run(
                [sys.executable, "-m", "cli_devops", *base],
                capture_output=True, text=True, timeout=60, env=hermetic_environ(), check=False,
            )  # fmt: skip
            output = done.stderr
            assert output == "60 instances: 60 healthy, 0 unhealthy, 0 unknown\n"
    assert "read " not in output.replace("GET ", "")
    assert "instances (" not in output


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        (ReadProgress(listing_attempts=1), "reading the list of instances… (3s)"),
        (ReadProgress(listing_attempts=3), "reading the list of instances, attempt 3… (3s)"),
        (ReadProgress(1, 1, 1, 0, 0), "read 1 of 1 instance (3s)"),
        (
            ReadProgress(1, 10_000, 2_500, 3, 1),
            "read 2,500 of 10,000 instances, 3 failed, 1 retry (3s)",
        ),
        (ReadProgress(1, 2, 0, 0, 2), "read 0 of 2 instances, 2 retries (3s)"),
    ],
)
def test_the_line_says_what_was_read_failed_and_retried(progress, line):
    assert describe(progress, 3.2) == line


@pytest.mark.slow
@pytest.mark.system
def test_the_line_is_gone_from_the_screen_when_the_table_is_shown(tmp_path):
    """In a real terminal (tmux): what is left on the screen is the table, not the progress."""
    with HostileCpx(ips(80), slow(0.05)) as api:
        session = f"cli-devops-progress-{id(tmp_path)}"
        done = tmp_path / "done"
        command = (
            f"{sys.executable} -m cli_devops --cp-url {api.url} --concurrency 2 status; "
            f"touch {done}; sleep 30"
        )
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "20", command],
            check=True, env=hermetic_environ(TERM="xterm"),
        )  # fmt: skip
        try:
            for _ in range(600):
                if done.exists():
                    break
                time.sleep(0.1)
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert done.exists()
    assert "S " in screen and "1 service, 0 with fewer than 2 healthy instances" in screen
    assert "read " not in screen
