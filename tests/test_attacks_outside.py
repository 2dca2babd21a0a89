"""Hostile input found by attacking the CLI from outside, one test per class of defect: each
ends in one `cli_devops: error:` line with the documented exit code, never exit 70."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pexpect
import pytest

from .conftest import hermetic_environ
from .hostile import HostileCpx, Reply, ips

LONG_LABEL = "a" * 64
BAD_HOSTS = [f"{LONG_LABEL}", f"{LONG_LABEL}.example", "a..b", ".", "x." * 130 + "y"]


@pytest.mark.parametrize("host", BAD_HOSTS)
@pytest.mark.parametrize("flag", ["--cp-url", "--prometheus-url"])
def test_a_host_name_the_resolver_cannot_encode_is_a_usage_error(cli, flag, host):
    result = cli(flag, f"http://{host}:1", "services")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"cli_devops: error: {flag}: invalid URL ")
    assert "invalid host name" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_host_name_the_resolver_cannot_encode_in_cpx_url_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setenv("CPX_URL", f"http://{LONG_LABEL}:1")
    result = cli("services")
    assert result.exit_code == 2
    assert "invalid host name" in result.stderr


@pytest.mark.parametrize("proxy", ["http://a..b:1", "http://[::1", "http://h:port", "http://:1"])
def test_a_proxy_url_that_cannot_be_used_is_a_usage_error_that_hides_it(cli, monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy)
    result = cli("--cp-url", "http://127.0.0.1:9", "services")
    assert result.exit_code == 2
    assert result.stderr == "cli_devops: error: http_proxy: not a valid http://HOST:PORT URL\n"


@pytest.mark.parametrize("flag", ["--cp-url", "--prometheus-url"])
def test_a_redirect_to_a_host_name_the_resolver_cannot_encode_is_an_invalid_redirect(cli, flag):
    redirect = Reply(status=302, body=b"", headers=(("Location", f"http://{LONG_LABEL}:1/"),))
    with HostileCpx(ips(1), lambda path: redirect, servers_reply=redirect) as api:
        result = cli(flag, api.url, "--retries", "0", "services")
    assert result.exit_code == 3
    assert "redirected to an invalid URL" in result.stderr
    assert "unexpected error" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cp-url", "https://ops:s3cret@127.0.0.1:9"], "--cp-url: invalid URL: credentials"),
        (["--cp-url", "http://a..b:9"], "--cp-url: invalid URL 'http://a..b:9': invalid host"),
        (["--prometheus-url", "ftp://127.0.0.1:9"], "--prometheus-url: invalid URL"),
        (["--prometheus-selector", "job"], "--prometheus-selector: invalid selector 'job'"),
    ],
)
def test_set_context_refuses_what_a_run_would_refuse_and_leaves_the_file(
    tmp_path, cli, args, message
):
    path = tmp_path / "c.toml"
    path.write_text('[contexts.a]\ncp-url = "127.0.0.1:9"\n', encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    result = cli("--config", str(path), "config", "set-context", "a", *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"cli_devops: error: {message}")
    assert "s3cret" not in result.stderr
    assert path.read_text(encoding="utf-8") == before
    assert cli("--config", str(path), "config", "view").exit_code == 0


def closed_stdout(*args: str, stdout: str = ">&-") -> subprocess.CompletedProcess[str]:
    """`cli_devops ARGS` run by a shell with stdout redirected as `stdout` says."""
    return subprocess.run(
        ["sh", "-c", f'exec "$0" -m cli_devops "$@" {stdout}', sys.executable, *args],
        stderr=subprocess.PIPE, text=True, env=hermetic_environ(), timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["services"], ["services", "-o", "json"], ["status", "-o", "csv"], ["--version"]],
)
def test_data_for_a_closed_stdout_is_an_error_exit_not_a_silent_success(sim, args):
    done = closed_stdout("--cp-url", sim.url, *args)
    assert (done.returncode, done.stderr) == (
        74,
        "cli_devops: error: cannot write to stdout: it is closed\n",
    )


def test_set_context_with_a_closed_stdout_keeps_the_change_and_says_so(tmp_path):
    path = tmp_path / "c.toml"
    done = closed_stdout("--config", str(path), "config", "set-context", "a", "--cp-url", "h:1")
    assert (done.returncode, done.stderr) == (
        74,
        "cli_devops: error: cannot write to stdout: it is closed\n",
    )
    assert path.read_text(encoding="utf-8") == '[contexts.a]\ncp-url = "h:1"\n'


@pytest.mark.parametrize("stdout", [">&-", ">/dev/full"])
@pytest.mark.parametrize("reference", [[], ["--reference"]])
def test_simulate_that_cannot_say_where_it_listens_is_a_write_error_not_a_bind_error(
    stdout, reference
):
    done = closed_stdout("simulate", "--port", "0", *reference, stdout=stdout)
    assert done.returncode == 74, done.stderr
    assert done.stderr.startswith("cli_devops: error: cannot write to stdout: ")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("command", [["set-context", "a"], ["use-context", "a"]])
def test_a_config_write_to_a_fifo_is_refused_at_once_not_a_hang(tmp_path, command):
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    link = tmp_path / "link.toml"
    link.symlink_to(fifo)
    for path in (fifo, link):
        done = subprocess.run(
            [sys.executable, "-m", "cli_devops", "--config", str(path), "config", *command],
            capture_output=True, text=True, env=hermetic_environ(), timeout=20, check=False,
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (74, "")
        assert done.stderr == f"cli_devops: error: cannot write {path}: it is not a regular file\n"


@pytest.mark.system
def test_top_sent_sigint_by_another_process_exits_130_with_the_terminal_restored(sim):
    """A raw terminal turns the Ctrl+C key into a key, but a SIGINT that does arrive
    (`kill -INT`, `timeout -s INT`) was taken by Textual's loop for a quit, exit 0."""
    env = hermetic_environ(TERM="xterm-256color")
    child = pexpect.spawn(sys.executable, ["-m", "cli_devops", "--cp-url", sim.url, "top",
                          "--interval", "0.3"], env=env, dimensions=(30, 120),
                          encoding="utf-8", timeout=60)  # fmt: skip
    try:
        child.expect("10 instances in 4 services")
        child.kill(signal.SIGINT)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 130
    output = child.before or ""
    assert "\x1b[?25h" in output[output.rindex("\x1b[?1049l") :]
    assert "Traceback" not in output


@pytest.mark.parametrize("args", [["services"], ["services", "-o", "csv"], ["status"]])
@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_service_name_stdout_cannot_encode_is_escaped_not_exit_70(args, encoding):
    def cafe(path: str) -> Reply:
        return Reply(body='{"cpu": 5, "memory": 5, "service": "Café☃"}'.encode())

    with HostileCpx(ips(2), cafe) as api:
        done = subprocess.run(
            [sys.executable, "-m", "cli_devops", "--cp-url", api.url, *args],
            capture_output=True, env=hermetic_environ(PYTHONIOENCODING=encoding),
            timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\\u2603" in done.stdout.decode(encoding)


# An argument holding a byte that is not UTF-8 reaches Python as a lone surrogate ("\udcff").
NOT_UTF8 = "\udcff"


def test_a_selector_that_is_not_utf8_is_a_usage_error(cli):
    result = cli("--prometheus-url", "127.0.0.1:9", "--prometheus-selector",
                 f'{{job="{NOT_UTF8}"}}', "services")  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        2,
        "cli_devops: error: --prometheus-selector: invalid selector: not valid UTF-8 text\n",
    )


def test_set_context_with_a_path_that_is_not_utf8_is_a_usage_error(tmp_path, cli):
    pem = tmp_path / f"ca{NOT_UTF8}.pem"
    pem.write_bytes(b"")
    path = tmp_path / "c.toml"
    result = cli("--config", str(path), "config", "set-context", "a", "--ca-cert", str(pem))
    assert (result.exit_code, result.stderr) == (
        2,
        "cli_devops: error: ca-cert: not valid UTF-8 text, which a TOML file cannot hold\n",
    )
    assert not path.exists()


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        (f"{NOT_UTF8}:1", "invalid host name (not valid UTF-8)"),
        (f"[::1%{NOT_UTF8}]:0", "invalid host name (not valid UTF-8)"),
        ("[::1%é]:0", "invalid IPv6 address (a zone id of plain ASCII)"),
        (f"{LONG_LABEL}:0", "invalid host name (an empty label, or a label over 63 characters)"),
    ],
)
def test_a_listen_address_the_resolver_cannot_encode_is_a_usage_error(cli, address, problem):
    result = cli("--demo", "exporter", "--web.listen-address", address)
    assert result.exit_code == 2
    assert result.stderr.endswith(f": {problem}\n")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("host", [NOT_UTF8, "a..b", LONG_LABEL])
def test_a_simulator_host_the_resolver_cannot_encode_is_a_usage_error(cli, host):
    result = cli("simulate", "--host", host, "--port", "0")
    assert result.exit_code == 2
    assert result.stderr.startswith("cli_devops: error: Invalid value for '--host': invalid host")


@pytest.mark.parametrize(
    "env",
    [
        {"_CLI_DEVOPS_COMPLETE": "bash_complete"},
        {"_CLI_DEVOPS_COMPLETE": "zsh_complete", "COMP_WORDS": "cli_devops --context "},
        {"_CLI_DEVOPS_COMPLETE": "fish_complete"},
        {"_CLI_DEVOPS_COMPLETE": "bash_complete", "COMP_WORDS": "cli_devops ", "COMP_CWORD": "x"},
    ],
)
def test_a_completion_request_without_usable_shell_variables_offers_nothing(env):
    done = subprocess.run(
        [sys.executable, "-m", "cli_devops"], capture_output=True, text=True,
        env=hermetic_environ(**env), timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["services"], 0),
        (["--cpu-threshold", "nan", "services"], 2),
        (["unhealthy-services", "--min-healthy", "30"], 1),
        (["--debug", "status"], 0),
        (["track", "UserService", "--count", "1", "-o", "json"], 0),
    ],
)
def test_a_full_stderr_never_changes_the_result(sim, args, code):
    done = subprocess.run(
        ["sh", "-c", 'exec "$0" -m cli_devops "$@" 2>/dev/full', sys.executable,
         "--cp-url", sim.url, *args],
        stdout=subprocess.PIPE, text=True, env=hermetic_environ(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == code
    if code != 2:
        assert done.stdout


def test_set_context_never_grows_the_file_past_what_a_read_accepts(tmp_path, cli):
    path = tmp_path / "c.toml"
    path.write_text(f'[contexts.a]\ncp-url = "h:1/{"a" * 1_000_000}"\n', encoding="utf-8")
    path.chmod(0o600)
    before = path.read_text(encoding="utf-8")
    result = cli("--config", str(path), "config", "set-context", "b", "--cp-url",
                 "h:1/" + "b" * 100_000)  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: {path}: the change would make it larger than 1024 KiB, which no "
        "command reads; it was left unchanged\n"
    )
    assert path.read_text(encoding="utf-8") == before
    assert cli("--config", str(path), "config", "get-contexts").exit_code == 0


@pytest.mark.parametrize("shard", ["٣/4", "1_0/2_0", "+1/2", "0/99999999999999999999999", "0/1025"])
def test_a_shard_in_other_digits_or_beyond_the_cap_is_a_usage_error(cli, shard):
    result = cli("--cp-url", "127.0.0.1:1", "exporter", "--shard", shard)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"cli_devops: error: invalid --shard {shard!r}: expected K/N with 0 <= K < N, like 0/3 "
        "(N at most 1024)\n"
    )
