"""`watch` as a process against the simulator with a service that flaps on a schedule: the
firing and the recovery once each and in order, `--for`, `--exec`, the signed webhook with
retries, the signals, and every bad input a one-line usage error."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_devops.simulator import SimulatorServer

from .conftest import hermetic_environ
from .watching import Receiver, Watch, flapping_fleet, start_flap, wait_until

FLAP_EVENTS = [
    ("instance_unhealthy", "Pay"),
    ("service_under_replicated", "Pay"),
    ("instance_recovered", "Pay"),
    ("service_recovered", "Pay"),
]
SUMMARY = re.compile(
    r"cli_devops: watched for \d+s; \d+ polls; (\d+) events? \((\d+) firing, (\d+) recovered\); "
    r"(\d+) still firing(; .*)?\n"
)


@pytest.fixture
def flapping() -> Iterator[tuple[SimulatorServer, str]]:
    server = SimulatorServer(flapping_fleet(), "127.0.0.1", 0)
    yield server, server.start()
    server.stop()


@pytest.mark.slow
def test_the_firing_and_the_recovery_once_each_in_order_then_sigterm_exits_0(flapping):
    server, url = flapping
    watch = Watch("--cp-url", url, "watch", "--interval", "0.1")
    start_flap(server)
    events = watch.events(4)
    assert [(e["kind"], e["service"]) for e in events] == FLAP_EVENTS
    assert events[0]["instance"] == "10.2.0.2" and events[0]["cpu"] == 97
    assert events[1]["healthy"] == 1 and events[1]["min_healthy"] == 2
    assert events[3]["healthy"] == 2
    assert events[0]["time"] < events[2]["time"]
    assert watch.next_event(timeout=1.0) is None  # nothing more: each event once
    status, stderr = watch.stop()
    assert status == 0
    summary = SUMMARY.fullmatch(stderr)
    assert summary is not None, stderr
    assert summary.groups()[:4] == ("4", "2", "2", "0")


def test_ctrl_c_exits_130_with_the_summary(flapping):
    server, url = flapping
    watch = Watch("--cp-url", url, "watch", "--service", "pay", "--interval", "0.1")
    start_flap(server)
    assert watch.next_event()["kind"] == "instance_unhealthy"  # type: ignore[index]
    status, stderr = watch.stop(signal.SIGINT)
    assert status == 130
    assert SUMMARY.fullmatch(stderr), stderr


@pytest.mark.slow
def test_for_suppresses_a_blip_shorter_than_the_hold(flapping):
    server, url = flapping
    watch = Watch("--cp-url", url, "watch", "--for", "3s", "--interval", "0.1")
    start_flap(server)
    assert watch.next_event(timeout=3.5) is None
    status, stderr = watch.stop()
    assert status == 0
    assert SUMMARY.fullmatch(stderr).groups()[:4] == ("0", "0", "0", "0")  # type: ignore[union-attr]


@pytest.mark.slow
def test_exec_gets_each_event_on_stdin_and_a_failing_command_is_reported(flapping, tmp_path):
    server, url = flapping
    log = tmp_path / "events.log"
    script = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read()); sys.exit(3)"
    command = f'{sys.executable} -c "{script}" {log}'
    watch = Watch("--cp-url", url, "watch", "--interval", "0.1", "--exec", command)
    start_flap(server)
    events = watch.events(4)
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 4)
    status, stderr = watch.stop()
    assert status == 0
    assert sorted(map(json.loads, log.read_text().splitlines()), key=lambda e: e["kind"]) == sorted(
        events, key=lambda e: e["kind"]
    )
    lines = stderr.splitlines()
    assert (
        "cli_devops: event command exited with status 3 for service_under_replicated of Pay"
        in lines
    )
    assert len(lines) == 5  # four failures, the summary


@pytest.mark.slow
def test_a_slow_command_never_holds_up_the_events(flapping):
    server, url = flapping
    watch = Watch("--cp-url", url, "watch", "--interval", "0.1", "--exec", "sleep 60")
    start_flap(server)
    began = time.monotonic()
    assert [(e["kind"], e["service"]) for e in watch.events(4)] == FLAP_EVENTS
    status, stderr = watch.stop()
    assert status == 0
    assert time.monotonic() - began < 30  # the sleeps were cut short, not waited for
    assert stderr.endswith("; 0 deliveries, 0 failed, 4 cut short\n"), stderr


def secret_file(tmp_path: Path, text: str = "s3cret\n", mode: int = 0o600) -> Path:
    path = tmp_path / "secret"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.slow
def test_webhook_posts_each_event_signed_retrying_until_delivered_once(flapping, tmp_path):
    server, url = flapping
    receiver = Receiver(statuses=[500, 503])  # the first event gets through on the third try
    try:
        watch = Watch("--cp-url", url, "watch", "--interval", "0.1", "--webhook", receiver.url,
                      "--webhook-secret-file", str(secret_file(tmp_path)))  # fmt: skip
        start_flap(server)
        events = watch.events(4)
        wait_until(lambda: sum(status == 200 for *_, status in receiver.received) == 4)
        status, stderr = watch.stop()
    finally:
        receiver.close()
    assert status == 0
    delivered = [json.loads(body) for _, body, status in receiver.received if status == 200]
    assert sorted(delivered, key=lambda e: e["kind"]) == sorted(events, key=lambda e: e["kind"])
    assert len(receiver.received) == 6
    for headers, body, _ in receiver.received:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Cli-Devops-Signature"], expected)
        assert headers["Content-Type"] == "application/json"
    assert "s3cret" not in stderr
    assert stderr.endswith("; 4 deliveries, 0 failed, 0 cut short\n"), stderr


@pytest.mark.slow
def test_a_webhook_that_keeps_failing_is_reported_and_watching_goes_on(flapping, tmp_path):
    server, url = flapping
    receiver = Receiver(statuses=[500] * 100)
    try:
        watch = Watch("--cp-url", url, "watch", "--interval", "0.1", "--webhook", receiver.url,
                      "--webhook-secret-file", str(secret_file(tmp_path)))  # fmt: skip
        start_flap(server)
        assert [(e["kind"], e["service"]) for e in watch.events(4)] == FLAP_EVENTS
        wait_until(lambda: len(receiver.received) >= 16)  # 4 events x 4 attempts
        status, stderr = watch.stop()
    finally:
        receiver.close()
    assert status == 0
    assert (
        "cli_devops: webhook: could not deliver instance_unhealthy of 10.2.0.2 (Pay): HTTP 500"
        in stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook", "http://127.0.0.1:9/"],
         "Error: --webhook needs --webhook-secret-file (the signature's key)"),
        (["--webhook-secret-file", "{secret}"], "Error: --webhook-secret-file needs --webhook"),
        (["--webhook", "ftp://127.0.0.1/", "--webhook-secret-file", "{secret}"],
         "cli_devops: error: invalid --webhook URL ftp://127.0.0.1/: give http://host[:port]/path "
         "or https://..."),
        (["--webhook", "http://u:pw@127.0.0.1:99999/", "--webhook-secret-file", "{secret}"],
         "cli_devops: error: invalid --webhook URL: not a URL"),
        (["--alertmanager", "http://%zz/"],
         "cli_devops: error: invalid --alertmanager URL http://%zz/: give "
         "http://host[:port]/path or https://..."),
        (["--alertmanager", "127.0.0.1:9093"],
         "cli_devops: error: invalid --alertmanager URL 127.0.0.1:9093: give "
         "http://host[:port]/path or https://..."),
        (["--exec", "no-such-command --x"], "Error: --exec: command not found: no-such-command"),
        (["--exec", "echo 'unclosed"], "Error: --exec: No closing quotation"),
        (["--for", "-1s"], None),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    secret = str(secret_file(tmp_path))
    result = cli("--cp-url", "127.0.0.1:9", "watch", *[a.format(secret=secret) for a in args])
    assert result.exit_code == 2
    if message is not None:
        if message.startswith("Error: "):  # click's usage errors point to the help
            message = f"cli_devops: error: {message[7:]} (see 'cli_devops watch --help')"
        assert result.stderr.splitlines()[-1] == message
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ("s3cret\n", 0o644, "is readable by group or others (mode 0644); make it private: "
                            "chmod 600 {path}"),
        ("\n", 0o600, "is empty"),
        ("x" * 5000, 0o600, "is larger than 4096 bytes"),
    ],
)  # fmt: skip
def test_a_secret_file_others_can_read_or_unusable_is_refused(cli, tmp_path, text, mode, message):
    path = secret_file(tmp_path, text, mode)
    result = cli("--cp-url", "127.0.0.1:9", "watch", "--webhook", "http://127.0.0.1:9/",
                 "--webhook-secret-file", str(path))  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == f"cli_devops: error: secret file {path} {message.format(path=path)}\n"
    assert "s3cret" not in result.stderr


def test_a_secret_file_that_is_a_fifo_is_refused_without_hanging(cli, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = cli("--cp-url", "127.0.0.1:9", "watch", "--webhook", "http://127.0.0.1:9/",
                 "--webhook-secret-file", str(fifo))  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == f"cli_devops: error: secret file {fifo} is not a regular file\n"


@pytest.mark.slow
def test_the_demo_fleet_shows_a_transition_within_a_minute():
    watch = Watch("--demo", "watch", "--service", "RoleService", "--interval", "1")
    event = watch.next_event(timeout=60)
    status, _ = watch.stop()
    assert event is not None and event["kind"] in ("instance_unhealthy", "service_under_replicated")
    assert status == 0


def test_a_reader_that_goes_away_ends_watch_with_exit_0(flapping):
    server, url = flapping
    process = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "--cp-url", url, "watch", "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
    )  # fmt: skip
    try:
        start_flap(server)
        assert process.stdout is not None and process.stderr is not None
        assert json.loads(process.stdout.readline())["kind"] == "instance_unhealthy"
        process.stdout.close()  # as `| head -1` does; the recovery is then written to no one
        assert process.wait(timeout=30) == 0
        assert SUMMARY.fullmatch(process.stderr.read()), "no summary"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
