"""What a new user meets first: --demo, --version, help, the README, the reference server."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli_devops import __version__
from cli_devops.cli import cli as cli_group
from cli_devops.simulator import ReferenceServer

from .conftest import needs_ipv6, run_process, stop_process

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = sorted(cli_group.commands)


def test_demo_services_as_a_real_process():
    result = run_process("--demo", "services")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["IP", "Service", "Status", "CPU", "Memory"]
    assert lines[0].split()[5:] in ([], ["Note"])  # Note: the demo fleet drifts into outliers
    assert re.fullmatch(r"150 instances: \d+ healthy, \d+ unhealthy, 0 unknown\n", result.stderr)
    assert len(lines) == 151


def test_demo_fleet_has_under_replicated_services(cli):
    result = cli("--demo", "unhealthy-services", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"cli_devops, version {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert cli_group.commands[command].help
    assert re.search(rf"cli_devops( --?[\w-]+(?: \S+)?)* {command}\b", README.read_text())


def test_help_lists_every_command(cli):
    out = cli("--help").stdout
    for command in COMMANDS:
        assert command in out


@needs_ipv6
def test_against_reference_like_server_over_ipv6(cli):
    with ReferenceServer("::", 0) as server:
        port = server.port
        for url in (f"http://[::1]:{port}", f"[::1]:{port}/", f"localhost:{port}"):
            result = cli("--cp-url", url, "services", "-o", "json")
            assert result.exit_code == 0, result.stderr
            records = json.loads(result.stdout)
            assert [r["ip"] for r in records] == [f"10.58.1.{n}" for n in range(1, 151)]
            assert all(r["error"] is None for r in records)
        status = cli("--cp-url", f"127.0.0.1:{port}", "status", "-o", "json")
        assert sum(r["instances"] for r in json.loads(status.stdout)) == 150


def test_against_reference_like_server_over_ipv4(cli):
    with ReferenceServer("127.0.0.1", 0) as server:
        result = cli(
            "--cp-url", server.url, "unhealthy-services", "--min-healthy", "1", "-o", "json"
        )
        assert result.exit_code in (0, 1)
        assert isinstance(json.loads(result.stdout), list)
        assert server.request_paths["/servers"] == 1
        assert sum(server.request_paths.values()) == 151


def quick_start_commands() -> list[str]:
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_quick_start_has_a_demo_command_and_a_test_command():
    demo, tests = quick_start_commands()
    assert demo.endswith("cli_devops --demo services")
    assert tests == "make check"
    assert "pytest" in (README.parent / "Makefile").read_text()


def test_ci_runs_the_readme_test_command():
    ci_script = (README.parent / ".ci" / "run").read_text()
    command = quick_start_commands()[1]  # with the Python and venv of each run after it
    assert any(line.split(" PYTHON=")[0] == command for line in ci_script.splitlines())


def test_simulate_command_serves_until_ctrl_c(cli):
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli_devops",
            "simulate",
            "--port",
            "0",
            "--fleet",
            "12",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        match = re.match(
            r"CPX simulator listening on (http://127\.0\.0\.1:\d+) \(12 instances", line
        )
        assert match, line
        result = cli("--cp-url", match.group(1), "services", "-o", "json")
        assert len(json.loads(result.stdout)) == 12
    finally:
        _, err = stop_process(child, timeout=30)
    assert child.returncode == 130  # Ctrl+C
    assert "Traceback" not in err


def test_simulate_on_a_busy_port_is_a_usage_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_process("simulate", "--port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_relative_link_in_the_readme_and_docs_resolves():
    root = README.parent
    pages = [README, *sorted((root / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        anchors = {_anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, fragment = target.partition("#")
            if path:
                assert (page.parent / path).exists(), f"{page.name}: {target}"
            elif fragment:
                assert fragment in anchors, f"{page.name}: {target}"


def _anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces as '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")
