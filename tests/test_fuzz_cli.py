"""The whole command line under hypothesis: hostile option values, environment variables and
config files, run through the real commands against the bundled simulator on loopback, checked
against the documented contract: an exit code of the README (never 70), no traceback without
--debug, errors on one line, no secret in any output, the config file never changed by a read.

Examples per run: 40 by default; `CLI_DEVOPS_FUZZ=long` runs 2,000 (the long profile).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

settings.register_profile(
    "fuzz-default", max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile(
    "fuzz-long", max_examples=2000, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
PROFILE = "fuzz-long" if os.environ.get("CLI_DEVOPS_FUZZ") == "long" else "fuzz-default"
WHOLE_RUN = pytest.mark.timeout(0 if PROFILE == "fuzz-long" else 120)
"""The long profile takes minutes per test: the suite's per-test timeout would cut it short."""

DOCUMENTED_EXITS = {0, 1, 2, 3, 4, 74}
SECRET = "s3cretTOKEN"
NUMBERS = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "1e-400", "", " ",
                     "0x10", "1_000", "\u0661", "5s", "-5m", "1" * 100, "\x1b[31m", "90", "3"]),
    st.floats().map(repr),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(max_size=8),
)  # fmt: skip
OPTIONS = st.sampled_from(
    ["--cpu-threshold", "--mem-threshold", "--timeout", "--deadline", "--retries",
     "--concurrency", "--at", "--cp-url", "--prometheus-selector"]
)  # fmt: skip
COMMANDS = st.sampled_from(
    [["services"], ["status"], ["unhealthy-services"], ["services", "-o", "json"],
     ["status", "--all-contexts"], ["config", "get-contexts"], ["config", "view"],
     ["track", "UserService", "--count", "1", "--interval", "0.1", "-o", "json"],
     ["wait", "--service", "UserService", "--max-wait", "0.3", "--interval", "0.1", "-o", "json"]]
)  # fmt: skip
TOML_VALUES = st.one_of(
    st.sampled_from(['nan', 'inf', '-inf', '1e300', '"nan"', '""', 'true', '[1]', '{a = 1}',
                     '"http://u:' + SECRET + '@h:1"', '"-5s"', '1.5', '0', '"x"', '"~0"']),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)  # fmt: skip
KEYS = st.sampled_from(
    ["cp-url", "cpu-threshold", "mem-threshold", "timeout", "deadline", "retries",
     "concurrency", "token", "prometheus-url", "strict", "bogus", "ca-cert"]
)  # fmt: skip


@pytest.mark.slow
@WHOLE_RUN
@settings(settings.get_profile(PROFILE))
@given(
    case=st.fixed_dictionaries({
        "command": COMMANDS,
        "options": st.lists(st.tuples(OPTIONS, NUMBERS), max_size=3),
        "context": st.lists(st.tuples(KEYS, TOML_VALUES), max_size=4),
        "env_url": st.one_of(st.none(), st.just(f"http://ops:{SECRET}@127.0.0.1:1"),
                             NUMBERS.filter(lambda text: "\x00" not in text)),  # no NUL in env
    })
)  # fmt: skip
def test_any_command_line_keeps_the_contract(cli, sim, tmp_path_factory, monkeypatch, case):
    command, options, context, env_url = (
        case["command"], case["options"], case["context"], case["env_url"]
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("fuzz")
    config = directory / "config.toml"
    lines = [f'current-context = "a"\n[contexts.a]\ntoken = "{SECRET}"\n']
    seen = {"token"}
    for key, value in context:
        if key not in seen:
            seen.add(key)
            lines.append(f"{key} = {value}\n")
    if "cp-url" not in seen:
        lines.append(f'cp-url = "{sim.url}"\n')
    text = "".join(lines)
    config.write_text(text)
    config.chmod(0o600)
    if env_url is not None:
        monkeypatch.setenv("CPX_URL", env_url)
    monkeypatch.setenv("CPX_CONFIG", str(config))
    args = [item for pair in options for item in pair]
    if command[0] == "config":
        args = []  # config subcommands take no fleet options
    result = cli(*command, *args)
    assert result.exit_code in DOCUMENTED_EXITS, (result, text)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert SECRET not in output, (result, text)
    errors = [line for line in result.stderr.splitlines() if line.startswith("cli_devops: error:")]
    assert len(errors) <= 1, result.stderr
    if result.exit_code in (2, 3):
        assert errors, result.stderr
    assert config.read_text() == text  # a read never changes the file
