"""The seven examples of input that broke 0.3.0, each through the design that removes its class:
one parameter type family, one redaction, one locked atomic config write, one file writer, one
lifecycle, a bounded exporter listener (`test_exporter_limits.py`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pexpect
import pytest

from .conftest import hermetic_environ, run_process
from .test_prometheus_bad_input import FakePrometheus, answer, target_matrix


# 1. A URL's user information never reaches the output.
@pytest.mark.parametrize("command", [["get-contexts"], ["view"]])
def test_a_context_url_password_is_never_printed(cli, tmp_path, command):
    config = tmp_path / "config.toml"
    config.write_text(
        '[contexts.p]\ncp-url = "https://ops:s3cret@cpx.example:8443"\n'
        'prometheus-url = "http://u:pw2@prom:9090/?access_token=tok3"\n'
    )
    config.chmod(0o600)
    result = cli("config", *command, "--config", str(config))
    assert result.exit_code == 0, result.stderr
    output = result.stdout + result.stderr
    for secret in ("s3cret", "ops:", "pw2", "tok3"):
        assert secret not in output
    assert "https://<redacted>@cpx.example:8443" in result.stdout


def test_an_error_quoting_a_url_hides_its_user_information(cli):
    result = cli("--prometheus-url", "http://ops:s3cret@127.0.0.1:99999", "services")
    assert result.exit_code == 2
    assert "s3cret" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


# 2. A Prometheus series without samples is no sample, not an exit 70.
def test_a_series_with_an_empty_value_list_hides_nothing(cli):
    fake = FakePrometheus()
    now = time.time()
    good = json.loads(target_matrix(now))["data"]["result"]
    fake.matrix = answer([*good, {"metric": {"instance": "t:2", "job": "cpx"}, "values": []}],
                         "matrix")  # fmt: skip
    labels = {"ip": "10.0.0.1", "cpx_service": "Api", "instance": "t:1", "job": "cpx"}
    fake.vector = answer([{"metric": labels, "value": [now, "1"]}], "vector")
    try:
        for command in ("services", "status"):
            result = cli("--prometheus-url", fake.url, "--retries", "0", command, "-o", "json")
            assert result.exit_code == 0, result.stderr
            assert "Api" in result.stdout
    finally:
        fake.stop()


# 3. Numbers are finite and in range, on the command line and in a context.
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400"])
@pytest.mark.parametrize("option", ["--cpu-threshold", "--mem-threshold"])
def test_a_threshold_that_is_not_a_finite_percentage_is_refused(cli, option, value):
    result = cli("--demo", "services", option, value)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"cli_devops: error: Invalid value for '{option}'")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("line", "why"),
    [("cpu-threshold = nan", "not a finite number"), ("retries = 1e300", "too large"),
     ("speed = inf", "not a global option"), ("timeout = -inf", "not a usable duration")],
)  # fmt: skip
def test_a_context_number_that_is_not_finite_is_refused(cli, tmp_path, line, why):
    config = tmp_path / "config.toml"
    config.write_text(f'current-context = "p"\n[contexts.p]\n{line}\n')
    result = cli("--config", str(config), "--demo", "services")
    assert result.exit_code == 2
    assert why in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_usage_errors_come_in_the_one_error_format(cli):
    for args in (["servicez"], ["services", "--bogus"], ["services", "--retries", "x"]):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith("cli_devops: error: ")
        assert len(result.stderr.splitlines()) == 1


# 4. Concurrent config writes all land.
@pytest.mark.slow
def test_twelve_set_context_processes_started_together_all_land(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('# kept\n[contexts.first]\ncp-url = "http://10.0.0.9:1"\n')
    commands = [
        [sys.executable, "-m", "cli_devops", "config", "set-context", f"c{i}",
         "--cp-url", f"http://10.0.0.{i}:8080", "--config", str(config)]
        for i in range(12)
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            command,
            env=hermetic_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in processes]
    assert all(code == 0 for code, _ in results), results
    listed = run_process("config", "get-contexts", "--config", str(config))
    names = {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert names == {"first", *(f"c{i}" for i in range(12))}
    assert config.read_text().startswith("# kept\n")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('contexts = { a = { cp-url = "http://h:1" } }\n', "not written as [contexts.NAME]"),
        ('[contexts]\na = { cp-url = "http://h:1" }\n', "is not a [contexts.a] table"),
        ("[contexts.a]\ncp-url = 5\n", None),  # a bad value: set-context of another key works
    ],
)
def test_a_config_the_writer_does_not_understand_is_refused_and_left_alone(cli, tmp_path,
                                                                          text, why):  # fmt: skip
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = cli("config", "set-context", "a", "--retries", "2", "--config", str(config))
    if why is None:
        assert result.exit_code == 0, result.stderr
        assert "cp-url = 5" in config.read_text()
        return
    assert result.exit_code == 2
    assert why in result.stderr and str(config) in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert config.read_text() == text


def test_a_symlink_loop_or_an_unwritable_directory_is_one_line(cli, tmp_path):
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    result = cli("config", "set-context", "a", "--retries", "2", "--config", str(loop))
    assert result.exit_code in (2, 74)
    assert "symbolic links" in result.stderr and len(result.stderr.splitlines()) == 1
    if os.geteuid() == 0:
        return  # root writes anywhere
    locked = tmp_path / "ro"
    locked.mkdir()
    (locked / "config.toml").write_text("")
    locked.chmod(0o500)
    result = cli("config", "set-context", "a", "--config", str(locked / "config.toml"))
    assert result.exit_code == 74 and len(result.stderr.splitlines()) == 1


# 6. One file writer: every target is written or one error line, never exit 70 or a hang.
@pytest.mark.system
def test_record_to_a_full_disk_is_one_line_and_exit_74(tmp_path):
    child = _spawn_top("--demo", "top", "--interval", "0.3", "--record", "/dev/full")
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 74
    text = child.before or ""
    assert "cli_devops: error: cannot write the recording /dev/full: no space left" in text
    assert "Traceback" not in text


@pytest.mark.system
@pytest.mark.parametrize("target", ["dir", "fifo", "missing/dir/file"])
def test_record_to_what_cannot_be_written_is_one_line_at_start(tmp_path, target):
    path = tmp_path / target
    if target == "dir":
        path.mkdir()
    elif target == "fifo":
        os.mkfifo(path)  # nobody reads it: an error at once, not a hang
    child = _spawn_top("--demo", "top", "--record", str(path))
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == (2 if target == "dir" else 74), child.before
    assert str(path) in (child.before or "")
    assert len((child.before or "").splitlines()) == 1


# 5. One lifecycle: SIGTERM and SIGHUP leave top as `q` does.
@pytest.mark.system
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_top_stopped_by_a_signal_restores_the_terminal(sim, tmp_path, stop):
    recording = tmp_path / "r.jsonl"
    child = _spawn_top("top", "--cp-url", sim.url, "--interval", "0.3", "--record",
                       str(recording))  # fmt: skip
    try:
        child.expect("10 instances in 4 services")
        child.kill(stop)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 128 + stop
    output = child.before or ""
    tail = output[output.rindex("\x1b[?1049l") :]  # the alternate screen left,
    assert "\x1b[?25h" in tail  # the cursor shown
    assert "Traceback" not in output
    assert recording.read_text().endswith("}\n")  # whole polls only


def _spawn_top(*args: str) -> pexpect.spawn:
    env = hermetic_environ(TERM="xterm-256color")
    return pexpect.spawn(sys.executable, ["-m", "cli_devops", *args], env=env,
                         dimensions=(30, 120), encoding="utf-8", timeout=60)  # fmt: skip


# A bounded pool for --all-contexts: a fixed number of contexts read at once.
def test_all_contexts_reads_a_fixed_number_of_contexts_at_once(cli, tmp_path):
    import threading

    from cli_devops.fleets import CONTEXT_WORKERS

    from .hostile import HostileCpx, ips, slow

    with HostileCpx(ips(2), slow(0.3)) as api:
        config = tmp_path / "config.toml"
        config.write_text("".join(f'[contexts.c{i}]\ncp-url = "{api.url}"\n' for i in range(40)))
        peak = threading.active_count()
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.wait(0.01):
                peak = max(peak, threading.active_count())

        before = threading.active_count()
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            result = cli("--config", str(config), "status", "--all-contexts", "-o", "json")
        finally:
            done.set()
            watcher.join()
    assert result.exit_code == 0, result.stderr
    assert {row["context"] for row in json.loads(result.stdout)} == {f"c{i}" for i in range(40)}
    assert peak - before - 1 <= CONTEXT_WORKERS  # the watcher is the 1


# The standard streams: a full stdout is exit 74 in one line; a closed stderr changes nothing.
@pytest.mark.parametrize(
    "args",
    [["services"], ["status", "-o", "json"], ["unhealthy-services", "-o", "csv"],
     ["track", "UserService", "--count", "2", "--interval", "0.1", "-o", "json"]],
)  # fmt: skip
def test_a_full_stdout_is_exit_74_in_one_line(sim, args):
    with open("/dev/full", "w") as full:  # noqa: PTH123
        done = subprocess.run(
            [sys.executable, "-m", "cli_devops", "--cp-url", sim.url, *args],
            stdout=full, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
            timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 74, done.stderr
    assert done.stderr == "cli_devops: error: cannot write to stdout: no space left on the device\n"


@pytest.mark.parametrize("args", [["services"], ["unhealthy-services", "--min-healthy", "3"]])
def test_a_closed_stderr_never_changes_the_result(sim, args):
    def run(stderr: int | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli_devops", "--cp-url", sim.url, *args],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=hermetic_environ(),
            timeout=60, check=False, close_fds=True,
        )  # fmt: skip

    normal = run(subprocess.DEVNULL)
    closed = subprocess.run(
        ["sh", "-c", 'exec "$0" -m cli_devops --cp-url "$@" 2>&-', sys.executable,
         sim.url, *args],
        stdout=subprocess.PIPE, text=True, env=hermetic_environ(), timeout=60, check=False,
    )  # fmt: skip
    assert closed.returncode == normal.returncode
    assert closed.stdout == normal.stdout


@pytest.mark.parametrize("moment", ["-100000000w", "0001-01-01T00:00:00Z", "-2000000d"])
def test_an_instant_before_1970_is_refused_with_the_option_name(cli, moment):
    fake = FakePrometheus()
    fake.matrix = target_matrix(time.time())
    fake.vector = answer([], "vector")
    try:
        result = cli("--prometheus-url", fake.url, "status", f"--at={moment}")
    finally:
        fake.stop()
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("cli_devops: error: --at: ")
    assert len(result.stderr.splitlines()) == 1


# Found by the property tests: `~user` of a user that does not exist (pathlib raised RuntimeError).
def test_a_home_of_no_user_is_one_usage_error(cli, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('current-context = "a"\n[contexts.a]\nca-cert = "~0"\n')
    in_context = cli("--config", str(config), "--demo", "services")
    named = cli("--config", "~no-such-user-9/config.toml", "--demo", "services")
    for result in (in_context, named):
        assert result.exit_code == 2, result.stderr
        assert "no home directory for user" in result.stderr
        assert len(result.stderr.splitlines()) == 1
