"""Completion in a real interactive bash (in tmux), with the script `completion bash` prints:
after `--cp-url HOST:PORT` every later word still completes, though bash splits words at `:`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import hermetic_environ

pytestmark = [pytest.mark.slow, pytest.mark.system]


class Bash:
    def __init__(self, name: str) -> None:
        self.name = name

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, check=True
        ).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def type(self, text: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)
        if keys:
            self.tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in (screen := self.screen()):
            assert time.monotonic() < deadline, screen
            time.sleep(0.1)
        return screen

    def line(self, text: str, expected: str) -> str:
        """Type `text`, press Tab twice, and return the screen once `expected` shows; then
        clear the line."""
        self.tmux("send-keys", "-t", self.name, "C-c")
        self.tmux("send-keys", "-t", self.name, "clear", "Enter")
        time.sleep(0.2)
        self.type(text, "Tab", "Tab")
        return self.wait_for(expected)


@contextmanager
def interactive_bash() -> Iterator[Bash]:
    name = f"cli-devops-bash-{os.getpid()}-{time.monotonic_ns()}"
    env = hermetic_environ(TERM="xterm", PS1="$ ", HISTFILE="/dev/null")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        ["tmux", "-L", name, "-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "160",
         "-y", "40", "bash --norc --noprofile -i"],
        check=True, env=env,
    )  # fmt: skip
    bash = Bash(name)
    try:
        bash.type("source <(cli_devops completion bash) && echo READY", "Enter")
        bash.wait_for("\nREADY\n")  # the answer, not the command line
        yield bash
    finally:
        subprocess.run(["tmux", "-L", name, "kill-server"], check=False)


def test_words_after_host_port_complete_in_bash(sim):
    host_port = sim.url.removeprefix("http://")
    with interactive_bash() as bash:
        screen = bash.line(f"cli_devops --cp-url {host_port} track ", "UserService")
        for name in ("AuthService", "GeoService", "MLService", "UserService"):
            assert name in screen
        assert "unhealthy-services" not in screen  # not the command names
        screen = bash.line(f"cli_devops --cp-url {host_port} services --service Us",
                           "services --service UserService")  # fmt: skip
        screen = bash.line(f"cli_devops --cp-url {host_port} services --sort ", "memory")
        assert all(choice in screen for choice in ("ip", "service", "status", "cpu"))
        assert "unhealthy-services" not in screen
        screen = bash.line(f"cli_devops services --cp-url {host_port} --st", "--status")
        assert "--strict" in screen
