"""Shell completion through click's completion environment, as the shell runs it: a real
process with _CLI_DEVOPS_COMPLETE, COMP_WORDS and COMP_CWORD, against a simulator, a closed
port and an API that never answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from cli_devops.simulator import Fleet, SimInstance, SimulatorServer

from .conftest import hermetic_environ, run_process

SERVICES = ["AuthService", "GeoService", "MLService", "UserService"]
LOOSE_BOUND = 10.0
"""Seconds: the budget is 0.9 s plus the interpreter's start; several times that is a hang."""


def complete(line: str, shell: str = "bash", **env: str) -> tuple[list[str], float]:
    """Completions for `line` (the cursor at its end), and how long the process took."""
    words = line.split(" ")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cli_devops"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=hermetic_environ(
            _CLI_DEVOPS_COMPLETE=f"{shell}_complete",
            COMP_WORDS=line,
            # fish passes the word being completed, the others its index
            COMP_CWORD=words[-1] if shell == "fish" else str(len(words) - 1),
            **env,
        ),
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = [line for line in done.stdout.splitlines() if line]
    if shell == "bash":
        return [item.split(",", 1)[1] for item in lines], elapsed
    return lines, elapsed


@pytest.mark.slow
def test_track_completes_service_names_from_the_api(sim):
    assert complete(f"cli_devops --cp-url {sim.url} track ")[0] == SERVICES
    assert complete(f"cli_devops track --cp-url {sim.url} Us")[0] == ["UserService"]
    assert complete(f"cli_devops track --cp-url {sim.url} us")[0] == ["UserService"]
    assert complete("cli_devops track --service ", CPX_URL=sim.url)[0] == SERVICES
    assert complete("cli_devops services --service M", CPX_URL=sim.url)[0] == ["MLService"]
    assert complete("cli_devops status --service G", CPX_URL=sim.url)[0] == ["GeoService"]


def test_service_names_from_the_current_context(sim, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'current-context = "a"\n[contexts.a]\ncp-url = "{sim.url}"\n'
                      '[contexts.b]\ncp-url = "127.0.0.1:1"\n')  # fmt: skip
    assert complete("cli_devops track A", CPX_CONFIG=str(config))[0] == ["AuthService"]
    assert complete("cli_devops --context ", CPX_CONFIG=str(config))[0] == ["a", "b"]
    assert complete(f"cli_devops --config {config} status --context b")[0] == ["b"]
    assert complete(f"cli_devops --config {config} config use-context ")[0] == ["a", "b"]


def test_zsh_and_fish_complete_too(sim):
    zsh, _ = complete(f"cli_devops --cp-url {sim.url} track Geo", shell="zsh")
    assert zsh == ["plain", "GeoService", "_"]
    fish, _ = complete(f"cli_devops --cp-url {sim.url} track Geo", shell="fish")
    assert fish == ["plain,GeoService"]


def test_choices_complete():
    assert complete("cli_devops services -o ")[0] == ["table", "json", "csv"]
    assert complete("cli_devops services --sort c")[0] == ["cpu"]
    assert complete("cli_devops services --status un")[0] == ["unhealthy", "unknown"]
    assert complete("cli_devops completion ")[0] == ["bash", "zsh", "fish"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_closed_port_offers_nothing_fast():
    names, elapsed = complete(f"cli_devops --cp-url 127.0.0.1:{closed_port()} track ")
    assert names == []
    assert elapsed < LOOSE_BOUND


@pytest.fixture
def silent_api() -> Iterator[str]:
    """An address that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_an_api_that_never_answers_offers_nothing_within_the_budget(silent_api):
    names, elapsed = complete(f"cli_devops --cp-url {silent_api} track ")
    assert names == []
    assert elapsed < LOOSE_BOUND


def test_unusable_options_offer_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [")
    assert complete("cli_devops track ", CPX_CONFIG=str(bad))[0] == []
    assert complete("cli_devops --cp-url ftp://x track ")[0] == []
    assert complete("cli_devops --context ", CPX_CONFIG=str(bad))[0] == []


def test_names_a_shell_would_split_are_not_offered():
    fleet = Fleet(
        {"10.1.0.1": SimInstance("Good", 1, 1), "10.1.0.2": SimInstance("Bad\nName", 1, 1),
         "10.1.0.3": SimInstance("Also Bad", 1, 1), "10.1.0.4": SimInstance("Esc\x1b[2J", 1, 1)},
        drift=False,
    )  # fmt: skip
    with SimulatorServer(fleet, "127.0.0.1", 0) as server:
        assert complete(f"cli_devops --cp-url {server.url} track ")[0] == ["Good"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script(shell):
    result = run_process("completion", shell)
    assert result.exit_code == 0
    assert "_CLI_DEVOPS_COMPLETE" in result.stdout
    assert f"{shell}_complete" in result.stdout


def test_completion_of_an_unknown_shell_is_a_usage_error():
    result = run_process("completion", "powershell")
    assert result.exit_code == 2
    assert "'powershell' is not one of 'bash', 'zsh', 'fish'" in result.stderr
