"""Hostile input at the surfaces that take secrets and untrusted text: tokens and URLs typed
before or after the command, config files holding Prometheus credentials, and URLs that
cannot be parsed. Each must end in one `cli_devops: error:` line with the documented exit
code, never exit 70, and never repeat a secret."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_devops import config
from cli_devops.config import ConfigError

SECRET = "s3cr3tPASS"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("token", ["a b", "a\nb", "a\x1b[2Jb", "\x7f", "é"])
@pytest.mark.parametrize("flag", ["--token", "--prometheus-token"])
@pytest.mark.parametrize("before", [True, False])
def test_a_token_that_cannot_go_in_a_header_is_refused_before_or_after_the_command(
    cli, token, flag, before
):
    args = [flag, token, "--prometheus-url", "127.0.0.1:9"]
    args = [*args, "status"] if before else ["status", *args]
    result = cli(*args)
    assert result.exit_code == 2
    assert "must be visible ASCII characters only" in result.stderr
    assert token not in result.stderr


def test_config_view_never_shows_the_prometheus_token_or_a_url_password(tmp_path, cli):
    path = write(
        tmp_path / "c.toml",
        "[contexts.a]\n"
        f'prometheus-token = "{SECRET}"\n'
        f'prometheus-url = "https://reader:{SECRET}@127.0.0.1:9/prom"\n',
    )
    result = cli("--config", str(path), "config", "view")
    assert result.exit_code == 0
    assert SECRET not in result.stdout
    assert result.stdout == (
        "[contexts.a]\n"
        'prometheus-token = "<redacted>"\n'
        'prometheus-url = "https://<redacted>@127.0.0.1:9/prom"\n'
    )
    assert SECRET not in repr(config.load(path))


@pytest.mark.parametrize(
    "line",
    [f'prometheus-token = "{SECRET}"', f'prometheus-url = "http://u:{SECRET}@127.0.0.1:9"'],
)
def test_prometheus_credentials_in_a_file_others_can_read_are_refused(tmp_path, line):
    path = write(tmp_path / "c.toml", f"[contexts.a]\n{line}\n", 0o644)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert "chmod 600" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_adding_a_prometheus_token_to_a_file_others_can_read_is_refused(tmp_path, cli):
    path = write(tmp_path / "c.toml", "[contexts.a]\n", 0o644)
    result = cli("--config", str(path), "config", "set-context", "a", "--prometheus-token", SECRET)
    assert result.exit_code == 2
    assert "chmod 600" in result.stderr
    assert SECRET not in path.read_text()


def test_prometheus_token_can_be_read_from_stdin(tmp_path, cli, monkeypatch):
    import io

    path = tmp_path / "c.toml"
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    result = cli("--config", str(path), "config", "set-context", "a", "--prometheus-token", "-")
    assert result.exit_code == 0, result.stderr
    assert config.load(path).contexts["a"].values["prometheus-token"] == SECRET


URLS = [
    f"http://u:{SECRET}@[::1:1/",
    f"http://u:{SECRET}@127.0.0.1:99999",
    f"http://u:{SECRET}/x@127.0.0.1:1",
    f"ftp://u:{SECRET}@127.0.0.1",
    "http://[::1",
    "http://[::1]:port",
    "http://127.0.0.1:9/\x01x",
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("flag", ["--cp-url", "--prometheus-url"])
def test_an_unusable_url_is_a_usage_error_that_never_repeats_a_password(cli, flag, url):
    result = cli(flag, url, "status")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"cli_devops: error: {flag}: invalid URL")
    assert result.stderr.count("\n") == 1
    assert SECRET not in result.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(st.sampled_from("hu:/@[]%?#.19 \x01é"), max_size=30),
    st.sampled_from(["", "http://", "https://"]),
)
def test_any_url_text_is_a_url_or_one_usage_error(url, scheme):
    from cli_devops.client.settings import normalize_base_url
    from cli_devops.errors import SettingError, UsageError
    from cli_devops.sources.promql import prometheus_url

    for parse in (normalize_base_url, lambda text: prometheus_url(text)[0]):
        try:
            base = parse(scheme + url)
        except (SettingError, UsageError) as err:
            assert str(err).isprintable()
        else:
            assert base.startswith(("http://", "https://"))
            assert base.isprintable()


@pytest.fixture(scope="module")
def prometheus():
    from .test_prometheus_bad_input import FakePrometheus

    server = FakePrometheus()
    yield server
    server.stop()


huge_integers = st.one_of(
    st.integers(), st.integers(min_value=10**300, max_value=10**4000), st.just(-(10**400))
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(moment=huge_integers, where=st.sampled_from(["vector", "matrix"]))
def test_a_sample_time_of_any_integer_is_exit_3_or_read(prometheus, cli, moment, where):
    """A JSON integer too large for a float (400 digits) exited 70."""
    from .test_prometheus_bad_input import answer, target_matrix

    now = time.time()
    labels = {"ip": "10.0.0.1", "cpx_service": "S", "instance": "t:1", "job": "cpx"}
    vector = [{"metric": labels, "value": [now, "0.5"]}]
    prometheus.raw = None
    prometheus.matrix = target_matrix(now)
    prometheus.vector = answer(vector, "vector")
    if where == "vector":
        vector[0]["value"][0] = moment
        prometheus.vector = answer(vector, "vector")
    else:
        points = [[moment, "1"]]
        prometheus.matrix = answer([{"metric": labels, "values": points}], "matrix")
    outcome = cli("--prometheus-url", prometheus.url, "--retries", "0", "services", "-o", "json")
    assert outcome.exit_code in (0, 3), outcome.stderr
    assert len(outcome.stderr.splitlines()) <= 1


@pytest.mark.parametrize("fifo_at", ["web.yml", "server.crt", "server.key", "ca.crt"])
def test_a_fifo_in_the_web_config_fails_at_start_instead_of_hanging(tmp_path, fifo_at):
    """Opening a FIFO blocks until a writer comes: a web config file, certificate or key that
    is one hung the exporter before it served."""
    import os

    import trustme

    from .conftest import run_process

    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
    )
    (tmp_path / fifo_at).unlink()
    os.mkfifo(tmp_path / fifo_at)
    result = run_process(
        "--demo", "exporter", "--listen", "127.0.0.1:0",
        "--web.config.file", str(tmp_path / "web.yml"), timeout=30,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("cli_devops: error: ")
    assert "is not a regular file" in result.stderr
    assert result.stderr.count("\n") == 1


RECORDED = (
    '{"time": "%s", "instances": [{"ip": "10.0.0.1", "service": "S", "cpu": 61, "memory": 40,'
    ' "error": null}], "error": null}'
)


@given(
    st.datetimes(timezones=st.timezones() | st.just(None)).map(lambda moment: moment.isoformat())
    | st.sampled_from(["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
)
def test_a_recorded_time_is_refused_or_one_the_console_can_show(text):
    from cli_devops.errors import PayloadError
    from cli_devops.top.recording import decode

    try:
        moment = decode(RECORDED % text).time
    except PayloadError as err:
        assert str(err) == "time is not a timestamp"
    else:
        moment.timestamp()
        moment.astimezone().strftime("%H:%M:%S")


def test_a_recording_at_the_ends_of_time_is_skipped_not_a_crash(tmp_path):
    """A time of year 1 at +23:59 is before 1970 in UTC: the console raised OverflowError."""
    from .test_top_recording import replay

    path = tmp_path / "odd.jsonl"
    lines = ["0001-01-01T00:00:00+23:59", "2026-12-04T03:00:00Z", "9999-12-31T23:59:59-23:59"]
    path.write_text("".join(RECORDED % text + "\n" for text in lines))
    fleet, _, header = replay(str(path), drill=False)
    assert [line.split()[1] for line in fleet[1:]] == ["S"]
    assert "poll 1 of 1" in header
    assert "2 lines of the recording skipped" in header


def test_a_recording_line_longer_than_the_cap_is_skipped_without_reading_it_whole(
    tmp_path, monkeypatch
):
    import tracemalloc

    from cli_devops.top import command, recording

    monkeypatch.setattr(recording, "MAX_LINE", 1024 * 1024)
    path = tmp_path / "huge.jsonl"
    good = RECORDED % "2026-12-04T03:00:00Z"
    with path.open("w") as out:
        out.write(good + "\n" + "x" * (recording.MAX_LINE * 10) + "\n" + good + "\n")
    tracemalloc.start()
    try:
        loaded = command.load_recording(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (len(loaded.readings), loaded.skipped) == (2, 1)
    assert peak < recording.MAX_LINE * 3  # the line is ten times that


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_recording_that_is_not_a_regular_file_is_a_usage_error(tmp_path, special):
    """`--replay /dev/zero` read forever into memory; a FIFO hung before the console opened."""
    import os

    from cli_devops.errors import UsageError
    from cli_devops.top import command

    path = special
    if special == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    with pytest.raises(UsageError, match="is not a regular file"):
        command.load_recording(path)


@pytest.mark.parametrize(
    "line",
    ["cli_devops --context ", "cli_devops config use-context ", "cli_devops status --context "],
)
def test_completion_never_offers_a_context_name_a_shell_would_split_or_a_terminal_obey(
    tmp_path, line
):
    from .test_completion import complete

    path = tmp_path / "c.toml"
    path.write_text(
        '[contexts.ok]\n[contexts."b\\u001b[2J"]\n[contexts."c d"]\n[contexts."e\\nf"]\n'
    )
    assert complete(line, CPX_CONFIG=str(path))[0] == ["ok"]


@pytest.mark.parametrize(("key", "value"), [("retries", "1.5"), ("concurrency", "2.5")])
def test_a_fraction_for_a_whole_number_in_a_context_is_refused(cli, tmp_path, key, value):
    """`--retries 1.5` is refused on the command line; in a context it became 1 silently."""
    path = write(tmp_path / "c.toml", f"[contexts.a]\ndemo = true\n{key} = {value}\n")
    result = cli("--config", str(path), "--context", "a", "status")
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: {path}, line 3: context 'a', key '{key}': "
        f"{value} is not a whole number\n"
    )


@pytest.mark.parametrize("listen", ["1.2.3.4.5:1", "999.0.0.1:1"])
def test_an_address_that_does_not_resolve_says_why(listen):
    """getaddrinfo's errors have negative numbers: they read `Unknown error -2`."""
    from .conftest import run_process

    result = run_process("--demo", "exporter", "--listen", listen, timeout=30)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cli_devops: error: cannot listen on {listen}: ")
    assert "Unknown error" not in result.stderr


duration_text = st.one_of(
    st.text(st.sampled_from("0123456789.hms mun_eE+-\x1b"), max_size=12),
    st.text(max_size=8),
    st.sampled_from(["1m30s", "1s500ms", "1h", ".5", "1.", "1e3", "nan", "inf", "9" * 80]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=duration_text,
    flag=st.sampled_from(["--timeout", "--deadline"]),
    before=st.booleans(),
)
def test_any_duration_text_on_the_command_line_is_a_value_or_a_usage_error(cli, text, flag, before):
    from .test_contexts import closed_port_url

    url = closed_port_url()
    options = ["--cp-url", url, "--retries", "0", f"{flag}={text}"]
    result = cli(*options, "services") if before else cli("services", *options)
    assert result.exit_code in (2, 3), result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code == 3:
        assert result.stderr.startswith("cli_devops: error: cannot read the CPX API at ")


toml_values = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.booleans(),
    duration_text,
).map(lambda value: json.dumps(value) if not isinstance(value, float) else repr(value))
context_keys = st.sampled_from(
    ["timeout", "deadline", "retries", "concurrency", "cpu-threshold", "mem-threshold",
     "cp-url", "token", "prometheus-selector", "strict", "insecure", "ca-cert"]
)  # fmt: skip


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=context_keys, value=toml_values)
def test_any_value_of_any_key_in_a_context_is_used_or_one_usage_error(cli, tmp_path, key, value):
    from .test_contexts import closed_port_url

    path = tmp_path / "any.toml"
    path.write_text(
        f'[contexts.a]\ncp-url = "{closed_port_url()}"\nretries = 0\n{key} = {value}\n'
        if key not in ("cp-url", "retries")
        else f"[contexts.a]\n{key} = {value}\n"
    )
    path.chmod(0o600)
    result = cli("--config", str(path), "--context", "a", "--timeout", "2", "status")
    assert result.exit_code in (2, 3), result.stderr
    assert result.stderr.startswith(("cli_devops: ", "Usage: ")), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_all_contexts_of_a_large_file_are_read_in_time_linear_in_the_file(tmp_path):
    """Each context re-read the whole file: 2,000 contexts took 48 s, and the 30,000 a 1 MiB
    file holds would take hours. In a process of its own: its 2,000 reads in this process left
    a later in-process read of the test suite hanging."""
    from .conftest import run_process
    from .test_contexts import closed_port_url

    url = closed_port_url()
    path = tmp_path / "many.toml"
    path.write_text("[contexts]\n" + "".join(f'c{i}.cp-url = "{url}"\n' for i in range(2000)))
    started = time.monotonic()
    result = run_process("--config", str(path), "--retries", "0", "status", "--all-contexts")
    elapsed = time.monotonic() - started
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "cli_devops: error: none of the 2000 contexts could be read"
    )
    assert elapsed < 30, elapsed  # 6 s here
