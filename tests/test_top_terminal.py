"""`top` in a real terminal (a pseudo-terminal) and off one."""

from __future__ import annotations

import io
import os
import re
import sys
import time

import pexpect
import pytest

from .conftest import run_process

pytestmark = pytest.mark.system

ANSI = re.compile(
    r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])"
)


def spawn_top(*args: str, **extra: str) -> tuple[pexpect.spawn, io.StringIO]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("CPX_URL", "NO_COLOR", "COLUMNS", "LINES")
    }
    env.update(TERM="xterm-256color", PYTHONIOENCODING="utf-8", **extra)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli_devops", *args],
        env=env,
        dimensions=(35, 130),
        encoding="utf-8",
        timeout=30,
    )
    transcript = io.StringIO()
    child.logfile_read = transcript
    return child, transcript


def test_start_filter_drill_down_and_quit_in_a_terminal(sim, tmp_path):
    recording = tmp_path / "session.jsonl"
    child, transcript = spawn_top(
        "top", "--cp-url", sim.url, "--interval", "0.3", "--record", str(recording)
    )
    try:
        child.expect("MLService")
        child.expect("10 instances in 4 services")
        child.send("/")
        child.send("user")
        child.send("\r")
        child.expect("filter: user")
        child.send("\r")
        child.expect("UserService")
        child.expect("10.0.0.10")
        screen = ANSI.sub("", transcript.getvalue())
        pressed = time.monotonic()
        child.send("q")
        child.expect(pexpect.EOF)
        quit_seconds = time.monotonic() - pressed
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, transcript.getvalue()[-2000:]
    assert quit_seconds < 5  # a second is the aim; only a hang fails this
    output = transcript.getvalue()
    assert "\x1b[?1049h" in output  # the alternate screen ...
    tail = output[output.rindex("\x1b[?1049l") :]  # ... left at the end,
    assert "\x1b[?25h" in tail  # with the cursor shown again
    assert "Traceback" not in output
    assert re.search(r"Unhealthy\s+MLService\s+0/2", screen)
    assert re.search(r"10\.0\.0\.10\s+Unhealthy\s+91%", screen)
    assert len(recording.read_text().splitlines()) >= 1


def test_ctrl_c_quits_from_a_service_screen_and_restores_the_terminal(sim):
    child, transcript = spawn_top("top", "--cp-url", sim.url, "--interval", "0.3")
    try:
        child.expect("10 instances in 4 services")
        child.send("/")
        child.expect("Enter applies")  # the filter box is open
        child.send("geo\r\r")  # typed ahead: filter, then open what is left
        child.expect("Fleet › GeoService")
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 130
    output = transcript.getvalue()
    assert "\x1b[?25h" in output[output.rindex("\x1b[?1049l") :]
    assert "Traceback" not in output


def test_replay_in_a_terminal_needs_no_api(tmp_path):
    line = (
        '{"time": "2026-12-04T03:00:00.000Z", "instances": [{"ip": "10.0.0.1", "service": '
        '"NightService", "cpu": 97, "memory": 40, "error": null}], "error": null}\n'
    )
    path = tmp_path / "night.jsonl"
    path.write_text(line + line.replace("03:00:00", "03:00:02") + '{"time": "2026-12-04T0')
    child, transcript = spawn_top("top", "--cp-url", "http://127.0.0.1:9", "--replay", str(path))
    try:
        child.expect("end of recording")
        child.expect("NightService")
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    after = ANSI.sub("", transcript.getvalue()[transcript.getvalue().rindex("\x1b[?1049l") :])
    assert "cli_devops: 1 line of the recording was skipped (cut short or corrupt)" in after


def test_off_a_terminal_top_is_a_usage_error(sim):
    result = run_process("top", "--cp-url", sim.url)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "cli_devops: error: top is an interactive console and needs a terminal; for scripts read "
        "the fleet with `services -o json` or `status -o json`, or one service over time with "
        "`track SERVICE -o json`\n"
    )


def test_record_and_replay_together_is_a_usage_error(cli, tmp_path):
    result = cli("top", "--record", str(tmp_path / "a"), "--replay", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert "give --record or --replay, not both" in result.stderr
    result = cli("top", "--speed", "2")
    assert result.exit_code == 2
    assert "--speed applies to --replay only" in result.stderr


def test_stderr_redirected_is_a_usage_error_too(sim, tmp_path):
    log = tmp_path / "debug.log"
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", f'"{sys.executable}" -m cli_devops top --cp-url {sim.url} 2>"{log}"'],
        encoding="utf-8",
        timeout=30,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert log.read_text() == (
        "cli_devops: error: top draws on the terminal through stderr, which is redirected; run it "
        "without redirecting stderr (its diagnostics, --debug lines included, are printed there "
        "when it closes)\n"
    )


@pytest.mark.parametrize(
    ("flag", "extra"), [("--no-color", {}), ("", {"NO_COLOR": "1"})], ids=["no-color", "NO_COLOR"]
)
def test_without_colour_the_console_draws_and_quits(sim, flag, extra):
    args = ["top", "--cp-url", sim.url, "--interval", "0.3"]
    if flag == "--no-color":
        args.insert(0, flag)
    child, transcript = spawn_top(*args, **extra)
    try:
        child.expect("MLService")
        child.expect("10 instances in 4 services")
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    screen = ANSI.sub("", transcript.getvalue())
    assert child.exitstatus == 0, screen[-2000:]
    assert "Traceback" not in screen and "Error" not in screen, screen[-2000:]
