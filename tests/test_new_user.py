"""What a new user trips over: the words and hints of the one-shot commands, CSV, config view."""

from __future__ import annotations

import csv
import io
import re
import socket

import pexpect
import pytest

from .test_track import ANSI, spawn_track


def dead_url() -> str:
    """A loopback URL nothing listens on (a port just bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_csv_writes_booleans_as_json_does(cli, sim):
    result = cli("--cp-url", sim.url, "services", "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["outlier"] for row in rows} <= {"true", "false"}
    assert "True" not in result.stdout and "False" not in result.stdout


@pytest.mark.slow
@pytest.mark.system
def test_track_against_a_dead_api_says_unknown_not_unhealthy():
    child, transcript = spawn_track(
        dead_url(), "UserService", "--interval", "0.2", "--count", "2", options=("--retries", "0")
    )
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", transcript.getvalue())
    assert "Service state unknown: the API could not be read" in screen
    assert "Unhealthy" not in screen


def test_config_view_without_a_file_says_where_it_would_be(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = cli("config", "view")
    assert result.exit_code == 0
    assert result.stdout == ""
    expected = tmp_path / "cli_devops" / "config.toml"
    assert result.stderr == (
        f"No config file: there is none at {expected} "
        "(cli_devops config set-context NAME --cp-url URL creates it).\n"
    )


def test_one_duration_grammar_for_timeout_interval_and_at(cli, sim):
    result = cli("--cp-url", sim.url, "--timeout", "1d", "services", "-o", "json")
    assert result.exit_code == 0, result.stderr
    result = cli("--cp-url", sim.url, "track", "UserService", "--interval", "1w",
                 "--count", "1", "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    from cli_devops.durations import parse_duration
    from cli_devops.sources.promql import parse_moment

    for text in ("1d", "1d12h", "2w", "1h30m", "90s", "500ms"):
        assert parse_moment(f"-{text}", 1e9) == 1e9 - parse_duration(text)
        assert parse_moment(f"{text} ago", 1e9) == 1e9 - parse_duration(text)
    result = cli("--cp-url", sim.url, "--timeout", "1x", "services")
    assert result.exit_code == 2
    assert "w, d, h, m, s or ms" in result.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_at_on_track_names_the_commands_that_take_it_and_how_top_looks_back(cli, where):
    command = ["track", "UserService"]
    args = ["--at", "-5m", *command] if where == "before" else [*command, "--at", "-5m"]
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr == (
        "cli_devops: error: --at is not an option of 'track'; services, status, top, "
        "unhealthy-services take it (track follows the present; top --at TIME looks back, "
        "with --replay FILE or --prometheus-url)\n"
    )


def test_at_on_top_says_what_it_needs(cli):
    result = cli("top", "--at", "-5m")
    assert result.exit_code == 2
    assert result.stderr == (
        "cli_devops: error: --at needs --replay FILE or --prometheus-url "
        "(see 'cli_devops top --help')\n"
    )


def test_prometheus_url_pointed_at_a_cpx_api_names_cp_url(cli, sim):
    result = cli("--prometheus-url", sim.url, "--retries", "0", "status")
    assert result.exit_code == 3
    assert result.stderr == (
        f"cli_devops: error: {sim.url} does not look like Prometheus: its query API answered "
        "HTTP 400. Is it the CPX API? That is given with --cp-url, not --prometheus-url.\n"
    )


def every_command_line() -> list[list[str]]:
    from cli_devops.cli.main import cli as group

    lines = [[]]
    for name, command in group.commands.items():
        lines.append([name])
        lines += [[name, sub] for sub in getattr(command, "commands", {})]
    return lines


@pytest.mark.parametrize("command", every_command_line(), ids=" ".join)
def test_help_shows_metavars_a_person_reads(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    leaks = re.findall(r"\b(?:INTEGER|FLOAT|TEXT|RANGE|BOOLEAN)\b|<=x|x>=", result.stdout)
    assert leaks == [], command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--min-healthy", "x"],
         "Invalid value for '--min-healthy': 'x' is not a whole number; give N, at least 1"),
        (["status", "--min-healthy", "0"],
         "Invalid value for '--min-healthy': 0 is out of range; give N, at least 1"),
        (["--cpu-threshold", "nan", "status"],
         "Invalid value for '--cpu-threshold': 'nan' is not a finite number; give PCT, from 0 to "
         "100"),
        (["simulate", "--port", "70000"],
         "Invalid value for '--port': 70000 is out of range; give PORT, from 0 to 65535"),
        (["top", "--speed", "inf"],
         "Invalid value for '--speed': 'inf' is not a finite number; give X, from 0.01 to 1000"),
    ],
)  # fmt: skip
def test_number_messages_use_the_metavar_words(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cli_devops: error: {message} (see 'cli_devops ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", [*every_command_line(), ["options"]], ids=" ".join)
def test_every_help_page_fits_45_lines_of_80_columns(cli, command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    page = cli(*command, "--help").stdout
    assert len(page.splitlines()) <= 45, page
    assert max(len(line) for line in page.splitlines()) <= 80, page


def test_global_options_are_described_once_on_the_options_page(cli, monkeypatch):
    from cli_devops.cli.options import GLOBALS

    monkeypatch.setenv("COLUMNS", "80")
    page = cli("options")
    assert page.exit_code == 0
    assert len(page.stdout.splitlines()) <= 45, page.stdout
    for option in GLOBALS:
        assert f"  {option.flag} " in page.stdout or page.stdout.count(f"  {option.flag}\n")
    assert "Bearer token for the CPX API" in page.stdout
    status = cli("status", "--help").stdout
    assert "Bearer token for the CPX API" not in status
    named = " ".join(status[status.index("Global options:") :].split())
    assert "--cp-url --context --config" in named
    assert "--at --demo --no-color --debug; see 'cli_devops options'" in named
    assert "--at " not in " ".join(cli("track", "--help").stdout.split())
