"""Named contexts through the command line: two simulators, each context its own fleet, every
precedence step, the config subcommands' round trips, and refusals (unknown context, a token
others can read, invalid files)."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import run_process


@pytest.fixture
def config_file(tmp_path, sim, other_sim) -> Path:
    """Two contexts, `a` (the small fleet, current) and `b` (the other fleet)."""
    path = tmp_path / "config.toml"
    path.write_text(
        "# two environments\n"
        'current-context = "a"\n\n'
        f'[contexts.a]\ncp-url = "{sim.url}"\n\n'
        f'[contexts.b]\ncp-url = "{other_sim.url}"  # the other one\ncpu-threshold = 96\n'
    )
    path.chmod(0o600)
    return path


def ips(result) -> list[str]:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.stderr
    return [record["ip"] for record in json.loads(result.stdout)]


A_IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7",
         "10.0.0.8", "10.0.0.9", "10.0.0.10"]  # fmt: skip
B_IPS = ["10.9.0.1", "10.9.0.2"]


def test_each_context_sees_its_own_fleet(cli, config_file):
    config = ("--config", str(config_file))
    assert ips(cli(*config, "services", "-o", "json")) == A_IPS  # the current context
    assert ips(cli(*config, "--context", "b", "services", "-o", "json")) == B_IPS
    assert ips(cli("services", "-o", "json", *config, "--context", "a")) == A_IPS


def test_precedence_of_the_context_itself(cli, config_file, monkeypatch):
    monkeypatch.setenv("CPX_CONFIG", str(config_file))
    assert ips(cli("services", "-o", "json")) == A_IPS  # file's current-context
    monkeypatch.setenv("CPX_CONTEXT", "b")
    assert ips(cli("services", "-o", "json")) == B_IPS  # environment > file
    assert ips(cli("--context", "a", "services", "-o", "json")) == A_IPS  # command line > env


def test_precedence_of_a_value(cli, config_file, sim, other_sim, monkeypatch):
    monkeypatch.setenv("CPX_CONFIG", str(config_file))
    # context > built-in default: b's cpu-threshold 96 makes 10.9.0.2 (95% CPU) Healthy
    records = json.loads(cli("--context", "b", "services", "-o", "json").stdout)
    assert [r["status"] for r in records] == ["Healthy", "Healthy"]
    # command line > context
    records = json.loads(
        cli("--context", "b", "services", "-o", "json", "--cpu-threshold", "90").stdout
    )
    assert [r["status"] for r in records] == ["Healthy", "Unhealthy"]
    # environment > context, command line > environment
    monkeypatch.setenv("CPX_URL", other_sim.url)
    assert ips(cli("--context", "a", "services", "-o", "json")) == B_IPS
    assert ips(cli("--context", "a", "--cp-url", sim.url, "services", "-o", "json")) == A_IPS


def test_no_config_file_means_built_in_defaults(cli, tmp_path):
    result = cli("--config", str(tmp_path / "absent.toml"), "services")
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: config file {tmp_path / 'absent.toml'} does not exist\n"
    )


def test_unknown_context_is_a_usage_error_listing_the_known_ones(cli, config_file):
    result = cli("--config", str(config_file), "--context", "prod", "status")
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: no context named 'prod' in {config_file}; known contexts: a, b\n"
    )


def test_a_token_in_a_file_others_can_read_is_refused(cli, config_file):
    config_file.write_text(config_file.read_text() + 'token = "tok-3141592653"\n')
    config_file.chmod(0o644)
    result = cli("--config", str(config_file), "status")
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: config file {config_file} holds a token and is readable by group "
        f"or others (mode 0644); make it private: chmod 600 {config_file}\n"
    )
    assert "3141592653" not in result.stdout + result.stderr
    config_file.chmod(0o600)
    assert cli("--config", str(config_file), "status").exit_code == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("cpu-treshold = 85", "line 6: context 'a', key 'cpu-treshold': not a global option; "
                              "known keys: ca-cert, concurrency, cp-url, cpu-threshold"),
        ("cpu-threshold = 150", "line 6: context 'a', key 'cpu-threshold': 150 is out of range; "
                                "give PCT, from 0 to 100"),
        ('timeout = "5x"', "line 6: context 'a', key 'timeout': '5x' is not a duration; use "
                           "seconds (1.5)"),
        ('strict = "yes"', "line 6: context 'a', key 'strict': must be true or false"),
        ("retries = true", "line 6: context 'a', key 'retries': must be a whole number, not "
                           "true/false"),
        ("token = 8080", "line 6: context 'a', key 'token': must be a string"),
        ('context = "b"', "line 6: context 'a', key 'context': not a global option"),
        ("timeout = ", "line 6: not valid TOML: Invalid value"),
    ],
)  # fmt: skip
def test_an_invalid_value_names_file_line_and_key(cli, config_file, line, message):
    text = config_file.read_text().replace("\n\n[contexts.b]", f"\n{line}\n\n[contexts.b]")
    config_file.write_text(text)
    result = cli("--config", str(config_file), "status")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cli_devops: error: {config_file}, {message}")
    assert result.stderr.count("\n") == 1


def test_a_duration_and_a_relative_ca_cert_in_a_context(cli, config_file, tmp_path):
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config_file.write_text(
        config_file.read_text() + 'timeout = "1500ms"\ndeadline = "1m"\nca-cert = "ca.pem"\n'
    )
    assert ips(cli("--config", str(config_file), "--context", "b", "services", "-o", "json"))
    config_file.write_text(config_file.read_text().replace("ca.pem", "missing.pem"))
    result = cli("--config", str(config_file), "--context", "b", "services")
    assert result.exit_code == 2
    assert f"key 'ca-cert': File '{tmp_path / 'missing.pem'}' does not exist." in result.stderr


def test_the_new_users_round_trip(cli, tmp_path, sim, other_sim, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "xdg" / "cli_devops" / "config.toml"
    created = cli("config", "set-context", "prod", "--cp-url", sim.url, "--timeout", "2s")
    assert (created.exit_code, created.stdout) == (0, f"Context 'prod' created in {path}.\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli("config", "set-context", "staging", "--cp-url", other_sim.url).exit_code == 0
    assert cli("config", "current-context").exit_code == 2
    switched = cli("config", "use-context", "staging")
    assert switched.stdout == "Switched to context 'staging'.\n"
    assert cli("config", "current-context").stdout == "staging\n"
    listing = cli("config", "get-contexts").stdout.splitlines()
    assert [line.split() for line in listing] == [
        ["CURRENT", "NAME", "CP-URL"], ["prod", sim.url], ["*", "staging", other_sim.url],
    ]  # fmt: skip
    assert ips(cli("services", "-o", "json")) == B_IPS
    assert cli("--config", str(path), "config", "use-context", "prod").exit_code == 0
    assert ips(cli("services", "-o", "json")) == A_IPS
    modified = cli("config", "set-context", "prod", "--strict", "--token", "tok-2718")
    assert modified.stdout == f"Context 'prod' modified in {path}.\n"
    view = cli("config", "view")
    assert view.stdout == (
        'current-context = "prod"\n\n'
        f'[contexts.prod]\ncp-url = "{sim.url}"\ntimeout = 2\nstrict = true\n'
        'token = "<redacted>"\n\n'
        f'[contexts.staging]\ncp-url = "{other_sim.url}"\n'
    )
    deleted = cli("config", "delete-context", "prod")
    assert (deleted.stdout, deleted.stderr) == (
        f"Deleted context 'prod' from {path}.\n",
        "It was the current context; none is set now.\n",
    )
    assert cli("config", "delete-context", "prod").exit_code == 2
    assert "tok-2718" not in path.read_text()


def test_writes_keep_comments_other_keys_and_mode(cli, config_file):
    config_file.chmod(0o640)
    original = config_file.read_text()
    config = ("--config", str(config_file))
    assert cli(*config, "config", "set-context", "c", "--cp-url", "127.0.0.1:9").exit_code == 0
    assert cli(*config, "config", "use-context", "b").exit_code == 0
    assert cli(*config, "config", "set-context", "b", "--mem-threshold", "80").exit_code == 0
    assert cli(*config, "config", "delete-context", "c").exit_code == 0
    text = config_file.read_text()
    assert "# two environments\n" in text
    assert "  # the other one\ncpu-threshold = 96\nmem-threshold = 80\n" in text
    restored = text.replace('current-context = "b"', 'current-context = "a"')
    assert restored.replace("mem-threshold = 80\n", "").rstrip("\n") == original.rstrip("\n")
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640


def test_set_context_refuses_what_the_command_line_refuses(cli, tmp_path):
    config = ("--config", str(tmp_path / "c.toml"))
    for args, message in [
        (["--timeout", "soon"], "Invalid value for '--timeout': 'soon' is not a duration"),
        (["--cpu-threshold", "101"], "Invalid value for '--cpu-threshold'"),
        (["--token", "a b"], "Invalid value for '--token': must be visible ASCII"),
        (["--context", "x"], "--context is not an option of 'set-context'"),
    ]:
        result = cli(*config, "config", "set-context", "prod", *args)
        assert result.exit_code == 2, args
        assert message in result.stderr
    bad_name = cli(*config, "config", "set-context", "a b")
    assert bad_name.stderr.startswith("cli_devops: error: invalid context name 'a b'")
    assert not (tmp_path / "c.toml").exists()


def test_contexts_as_a_real_process(config_file, other_sim):
    result = run_process("status", "-o", "json", env_extra={"CPX_CONFIG": str(config_file),
                                                           "CPX_CONTEXT": "b"})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [r["service"] for r in json.loads(result.stdout)] == ["BillingService"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=200))
def test_any_config_file_is_shown_or_one_error_line(cli, tmp_path, text):
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    path.chmod(0o600)
    result = cli("--config", str(path), "config", "view")
    assert result.exit_code in (0, 2), result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith("cli_devops: error: ")
        assert result.stderr.count("\n") == 1
    assert "\x1b" not in result.stdout + result.stderr


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=30))
def test_any_duration_through_set_context_is_written_or_refused(cli, tmp_path, text):
    path = tmp_path / "durations.toml"
    result = cli("--config", str(path), "config", "set-context", "x", "--deadline", text)
    assert result.exit_code in (0, 2), result.stderr
    if result.exit_code == 2:
        assert "Invalid value for '--deadline'" in result.stderr
        assert "1500ms, 2s, 1m, 1m30s" in result.stderr or "too" in result.stderr
    else:
        assert cli("--config", str(path), "config", "view").exit_code == 0


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def three_contexts(config_file) -> Path:
    """a and b as above, and `down`, whose API does not answer."""
    config_file.write_text(
        config_file.read_text() + f'\n[contexts.down]\ncp-url = "{closed_port_url()}"\n'
    )
    return config_file


@pytest.mark.slow
def test_status_of_every_context_with_one_down(cli, three_contexts):
    result = cli("--config", str(three_contexts), "status", "--all-contexts", "-o", "json")
    assert result.exit_code == 1  # a flagged service in some context
    records = json.loads(result.stdout)
    assert [(r["context"], r["service"]) for r in records] == [
        ("a", "AuthService"), ("a", "GeoService"), ("a", "MLService"), ("a", "UserService"),
        ("b", "BillingService"),
    ]  # fmt: skip
    single = json.loads(cli("--config", str(three_contexts), "status", "-o", "json").stdout)
    assert list(records[0]) == ["context", *single[0]]  # the fields of `status`, context first
    assert records[-1]["healthy"] == 2  # b's own cpu-threshold (96) applies to b only
    assert result.stderr.startswith("cli_devops: context 'down': cannot read the CPX API at")
    assert result.stderr.count("\n") == 1
    table = cli("--config", str(three_contexts), "status", "--all-contexts")
    assert table.stdout.splitlines()[0].split()[:2] == ["Context", "Service"]
    assert table.stdout.splitlines()[1].split()[:2] == ["a", "AuthService"]
    assert table.stderr.endswith("2 contexts, 5 services, 2 with fewer than 2 healthy instances\n")


def test_unhealthy_services_of_every_context(cli, three_contexts):
    config = ("--config", str(three_contexts))
    result = cli(*config, "unhealthy-services", "--all-contexts", "-o", "csv")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "context,service,healthy,instances", "a,AuthService,1,2", "a,MLService,0,2",
    ]  # fmt: skip
    everything_healthy = ("--cpu-threshold", "100", "--mem-threshold", "100", "--min-healthy", "1")
    healthy = cli(*config, "unhealthy-services", "--all-contexts", *everything_healthy)
    assert healthy.exit_code == 0
    assert healthy.stderr.endswith("No service in any context has fewer than 1 healthy instance.\n")


def test_every_context_down_is_exit_3(cli, tmp_path):
    path = tmp_path / "down.toml"
    path.write_text(f'[contexts.x]\ncp-url = "{closed_port_url()}"\n'
                    f'[contexts.y]\ncp-url = "{closed_port_url()}"\n')  # fmt: skip
    result = cli("--config", str(path), "unhealthy-services", "--all-contexts")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "cli_devops: error: none of the 2 contexts could be read"
    )
    assert [line.split(":")[1] for line in result.stderr.splitlines()[:2]] == [
        " context 'x'", " context 'y'",
    ]  # fmt: skip


def test_all_contexts_refusals(cli, config_file, tmp_path):
    for context in ("a", "nowhere"):  # checked before the context is looked for
        both = cli("--config", str(config_file), "--context", context, "status", "--all-contexts")
        assert both.exit_code == 2
        assert both.stderr == "cli_devops: error: give --context or --all-contexts, not both\n"
    empty = cli("--config", str(tmp_path / "none.toml"), "status", "--all-contexts")
    assert empty.exit_code == 2
    none = tmp_path / "empty.toml"
    none.write_text("# nothing yet\n")
    result = cli("--config", str(none), "status", "--all-contexts")
    assert result.stderr == (
        f"cli_devops: error: no contexts in {none}; add one with: cli_devops config set-context\n"
    )


def test_set_context_reads_a_token_from_stdin(tmp_path):
    path = tmp_path / "c.toml"
    config = ("--config", str(path), "config", "set-context", "prod", "--token", "-")
    done = run_process(*config, input="tok-from-stdin\n")
    assert done.exit_code == 0, done.stderr
    assert 'token = "tok-from-stdin"' in path.read_text()
    refused = run_process(*config, input="two words\n")
    assert refused.exit_code == 2
    assert "Invalid value for '--token': the line read from stdin must be visible ASCII" in (
        refused.stderr
    )
    assert "two words" not in refused.stderr


@pytest.mark.parametrize("variable", ["a", "nowhere"])
def test_all_contexts_on_the_command_line_wins_over_cpx_context(
    cli, three_contexts, monkeypatch, variable
):
    monkeypatch.setenv("CPX_CONTEXT", variable)  # a context of the file, or none
    result = cli("--config", str(three_contexts), "status", "--all-contexts", "-o", "json")
    assert {record["context"] for record in json.loads(result.stdout)} == {"a", "b"}
    assert "context 'down'" in result.stderr  # read too, and down
