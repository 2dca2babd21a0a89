"""Global options where users type them, and what a new user meets in messages and choices."""

from __future__ import annotations

import json
import socket

import click
import pytest

from cli_devops.cli import cli as cli_group
from cli_devops.cli.acting import ACTING
from cli_devops.cli.options import BY_NAME, CONNECTION, FLEET_VIEW, PROMETHEUS, THRESHOLDS
from cli_devops.cli.options import ONE_SHOT as ONE_SHOT_OPTIONS
from cli_devops.simulator import Fleet, SimInstance, SimulatorServer

from .conftest import run_process

# Every global option with a value a command accepts (the URL is added per test).
VALUES = {
    "cpu_threshold": ["--cpu-threshold", "50"],
    "mem_threshold": ["--mem-threshold", "60"],
    "timeout": ["--timeout", "2"],
    "concurrency": ["--concurrency", "3"],
    "retries": ["--retries", "1"],
    "deadline": ["--deadline", "30"],
    "strict": ["--strict"],
    "token": ["--token", "s3cret"],
    "ca_cert": ["--ca-cert", __file__],  # any existing file passes parsing
    "insecure": ["--insecure"],
    "demo": ["--demo"],
    "no_color": ["--no-color"],
    "debug": ["--debug"],
    "cp_url": ["--cp-url", "http://127.0.0.1:9"],
    "context": ["--context", "prod"],
    "config": ["--config", "config.toml"],
    "prometheus_url": ["--prometheus-url", "http://127.0.0.1:9"],
    "prometheus_selector": ["--prometheus-selector", '{job="cpx"}'],
    "prometheus_token": ["--prometheus-token", "s3cret"],
    "at": ["--at", "-1m"],
}
ONE_SHOT = [
    ["services", "-o", "json"],
    ["services", "--sort", "cpu", "-o", "csv"],
    ["status", "-o", "json"],
    ["status"],
    ["unhealthy-services", "-o", "json"],
]


@pytest.mark.parametrize("command", ONE_SHOT, ids=" ".join)
def test_global_options_after_the_command_give_the_same_output(cli, sim, command):
    globals_ = ["--cp-url", sim.url, "--cpu-threshold", "50", "--mem-threshold", "60"]
    before = cli(*globals_, *command)
    after = cli(command[0], *globals_, *command[1:])
    assert before.exit_code == after.exit_code
    assert (before.stdout, before.stderr) == (after.stdout, after.stderr)
    assert before.stdout


def test_track_takes_global_options_after_the_command(cli, sim):
    before = cli("--cp-url", sim.url, "--mem-threshold", "4", "track", "GeoService",
                 "--count", "1", "-o", "json")  # fmt: skip
    after = cli("track", "GeoService", "--count", "1", "-o", "json", "--cp-url", sim.url,
                "--mem-threshold", "4")  # fmt: skip
    assert before.exit_code == after.exit_code == 0
    first, second = json.loads(before.stdout), json.loads(after.stdout)
    assert first["instances"] == second["instances"]
    assert {i["status"] for i in first["instances"]} == {"Unhealthy"}


def test_after_the_command_wins_over_before_and_over_the_environment(cli, sim, monkeypatch):
    monkeypatch.setenv("CPX_URL", "http://127.0.0.1:9")
    result = cli("--cp-url", "http://127.0.0.1:9", "services", "--cp-url", sim.url, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 10
    from_env = cli("services", "-o", "json")
    assert from_env.exit_code == 3
    assert "http://127.0.0.1:9" in from_env.stderr


@pytest.mark.parametrize(
    ("command", "ignored"),
    [
        *((["simulate", "--port", "0"], name) for name in (*ONE_SHOT_OPTIONS,)),
        *(
            (["exporter", "--listen", "127.0.0.1:0"], name)
            for name in ("strict", "no_color", *PROMETHEUS, "at")
        ),
        (["track", "UserService"], "at"),
        (["top"], "strict"),  # the console shows what could not be read instead
    ],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_a_global_option_the_command_ignores_is_refused_by_name(cli, command, ignored):
    result = cli(*VALUES[ignored], *command)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"cli_devops: error: {BY_NAME[ignored].flag} is not an option of '{command[0]}'"
    )
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def _commands() -> list[str]:
    """Every command, those of a group as `group sub`."""
    found = []
    for name, command in sorted(cli_group.commands.items()):
        if isinstance(command, click.Group):
            subcommands = command.list_commands(click.Context(command))
            found.extend(f"{name} {sub}" for sub in subcommands)
        else:
            found.append(name)
    return found


@pytest.mark.parametrize("command", _commands())
def test_each_command_help_lists_the_global_options_it_uses(cli, command):
    text = cli(*command.split(), "--help").stdout
    uses = {
        "simulate": (),
        "completion": (),
        "options": (),  # it describes them all, outside its own help
        "exporter": (*CONNECTION, *THRESHOLDS),
        "top": (*CONNECTION, *PROMETHEUS, *THRESHOLDS, "no_color", "at"),
        "track": FLEET_VIEW,
        "wait": ACTING,
        "watch": ACTING,
        # every option it can write to a context, and --config for the file
        "config set-context": tuple(name for name in BY_NAME if name not in ("context", "at")),
    }.get(command, ("config",) if command.startswith("config ") else ONE_SHOT_OPTIONS)
    for name, option in BY_NAME.items():
        if name == "debug" or name in uses:
            assert option.flag in text, (command, option.flag)
        else:
            assert option.flag not in text, (command, option.flag)


def busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize(
    "command",
    [["simulate", "--port", "{port}"], ["--demo", "exporter", "--listen", "127.0.0.1:{port}"]],
    ids=["simulate", "exporter"],
)
def test_a_busy_port_is_one_error_line_with_the_same_exit_code(command):
    with busy_port() as sock:
        port = sock.getsockname()[1]
        result = run_process(*(arg.format(port=port) for arg in command))
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


@pytest.mark.parametrize(
    ("environ", "args", "named"),
    [
        ({"CPX_URL": "foo:bar"}, [], "CPX_URL"),
        ({}, ["--cp-url", "foo:bar"], "--cp-url"),
        ({"CPX_URL": "http://127.0.0.1:9"}, ["--cp-url", "foo:bar"], "--cp-url"),
    ],
)
def test_an_invalid_url_is_named_as_the_user_gave_it(cli, monkeypatch, environ, args, named):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    result = cli("services", *args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: {named}: invalid URL 'foo:bar': port 'bar' is not a number\n"
    )


def test_demo_says_which_url_it_overrides(cli, monkeypatch):
    monkeypatch.setenv("CPX_URL", "http://127.0.0.1:9")
    result = cli("--demo", "status", "-o", "json")
    assert result.exit_code == 0
    assert "cli_devops: --demo: using the bundled simulator, not CPX_URL\n" in result.stderr
    monkeypatch.delenv("CPX_URL")
    quiet = cli("--demo", "status", "-o", "json")
    assert quiet.stderr == ""


def test_insecure_warns_only_for_https(cli, sim):
    plain = cli("--insecure", "--cp-url", sim.url, "services", "-o", "json")
    assert plain.exit_code == 0
    assert plain.stderr == ""
    with busy_port() as sock:  # nothing answers TLS there: only the warning matters
        port = sock.getsockname()[1]
        tls = cli("--insecure", "--timeout", "0.5", "--retries", "0",
                  "--cp-url", f"https://127.0.0.1:{port}", "services")  # fmt: skip
    assert "cli_devops: --insecure: TLS certificates are not verified" in tls.stderr


@pytest.mark.parametrize(
    "args",
    [["-o", "JSON"], ["-o", "Json", "--sort", "CPU"], ["--status", "HEALTHY", "-o", "json"]],
)
def test_choices_are_case_insensitive(cli, sim, args):
    result = cli("--cp-url", sim.url, "services", *args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)


@pytest.mark.parametrize(
    ("command", "typed"),
    [
        (["services", "--service"], "user"),
        (["status", "--service"], "usr"),
        (["track", "--count", "1"], "Usr"),
        (["track", "--count", "1"], "UserServic"),
    ],
)
def test_a_partial_service_name_gets_a_suggestion(cli, sim, command, typed):
    result = cli("--cp-url", sim.url, *command, typed)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"no service named {typed!r}; did you mean UserService?\n")


def test_no_headers_leaves_only_rows(cli, sim):
    table = cli("--cp-url", sim.url, "services", "--no-headers")
    assert table.stdout.splitlines()[0].split() == ["10.0.0.1", "UserService", "Healthy",
                                                    "10%", "20%"]  # fmt: skip
    assert len(table.stdout.splitlines()) == 10
    assert table.stderr == ""
    rows = cli("--cp-url", sim.url, "status", "-o", "csv", "--no-headers").stdout.splitlines()
    assert len(rows) == 4
    assert rows[0].startswith("AuthService,2,1,1,0,")


def served(size: int, services: int = 1) -> SimulatorServer:
    fleet = Fleet(
        {f"10.9.0.{n}": SimInstance(f"S{n % services}", 95, 10) for n in range(1, size + 1)},
        drift=False,
    )
    return SimulatorServer(fleet)


@pytest.mark.parametrize("size", [1, 2])
def test_summary_lines_count_their_nouns_right(cli, size):
    noun = "instance" if size == 1 else "instances"
    with served(size, services=size) as server:
        services = cli("--cp-url", server.url, "services")
        status = cli("--cp-url", server.url, "status", "--min-healthy", "1")
        flagged = cli("--cp-url", server.url, "unhealthy-services", "--min-healthy", str(size))
    assert services.stderr == f"{size} {noun}: 0 healthy, {size} unhealthy, 0 unknown\n"
    service_noun = "service" if size == 1 else "services"
    healthy = "healthy instance" if size == 1 else "healthy instances"
    assert status.stderr == f"{size} {service_noun}, {size} with fewer than 1 healthy instance\n"
    assert flagged.stderr == f"{size} {service_noun} with fewer than {size} {healthy}\n"


def test_no_instance_and_no_service_summaries(cli):
    with SimulatorServer(Fleet({}, drift=False)) as server:
        services = cli("--cp-url", server.url, "services")
        status = cli("--cp-url", server.url, "status")
    assert services.stderr == "No instances match.\n"
    assert status.stderr == "No services found.\n"
