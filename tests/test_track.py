"""`track`: piped records (failed polls included), the live view in a pseudo-terminal, Ctrl+C,
an API outage, and the poll scheduling."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pexpect
import pytest

from cli_devops.environment import Environment
from cli_devops.polling import Ticker
from cli_devops.simulator import SimulatorServer

from .conftest import stop_process


def test_track_json_writes_one_object_per_poll(cli, sim, fleet):
    result = cli("--cp-url", sim.url, "track", "UserService", "--count", "3", "--interval", "0.1",
                 "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        poll = json.loads(line)
        assert poll["service"] == "UserService"
        assert poll["error"] is None
        assert poll["time"].endswith("Z")
        assert [i["ip"] for i in poll["instances"]] == ["10.0.0.1", "10.0.0.2", "10.0.0.10"]
        assert poll["instances"][2]["cpu"] == fleet.instances["10.0.0.10"].cpu


def test_service_track_alias_and_option_form(cli, sim):
    result = cli("--cp-url", sim.url, "service-track", "--service", "GeoService", "--count", "1",
                 "-o", "csv")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["time", "ip", "service", "status", "cpu", "memory", "error", "outlier"]
    assert [r["ip"] for r in rows] == ["10.0.0.7", "10.0.0.8", "10.0.0.9"]


def test_track_table_when_piped_prints_timestamped_tables(cli, sim):
    result = cli("--cp-url", sim.url, "track", "MLService", "--count", "2", "--interval", "0.1")
    blocks = [b for b in result.stdout.split("\n\n") if b.strip()]
    assert len(blocks) == 2
    for block in blocks:
        first, header, *_ = block.splitlines()
        assert first.endswith("  MLService")
        assert header.split() == ["IP", "Service", "Status", "CPU", "Memory"]
    assert "\x1b" not in result.stdout


def test_track_unknown_service_is_a_usage_error(cli, sim):
    result = cli("--cp-url", sim.url, "track", "NoSuchService", "--count", "1")
    assert result.exit_code == 2
    assert "no service named 'NoSuchService'" in result.stderr


@pytest.mark.slow
def test_track_records_a_failed_poll(cli):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("--cp-url", f"127.0.0.1:{port}", "track", "UserService", "--count", "2",
                 "--interval", "0.1", "-o", "json")  # fmt: skip
    assert result.exit_code == 0
    polls = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(polls) == 2
    assert all(p["instances"] == [] and "cannot read the CPX API" in p["error"] for p in polls)


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ticker_subtracts_the_poll_duration_from_the_wait():
    clock = FakeClock()
    ticker = Ticker(3.0, clock)
    assert ticker.delay() == 0.0  # the first poll starts at once
    clock.now += 0.5  # the poll took 0.5 s
    assert ticker.delay() == pytest.approx(2.5)
    clock.now += 2.5 + 0.2  # woke on time, poll took 0.2 s
    assert ticker.delay() == pytest.approx(2.8)


def test_ticker_late_wake_ups_do_not_accumulate():
    clock = FakeClock()
    ticker = Ticker(1.0, clock)
    ticker.delay()
    starts = []
    for _ in range(5):
        clock.now += ticker.delay() + 0.05  # every sleep wakes 50 ms late
        starts.append(clock.now - 100.0)
    assert starts == pytest.approx([1.05, 2.05, 3.05, 4.05, 5.05])


def test_ticker_skips_missed_slots_after_a_slow_poll():
    clock = FakeClock()
    ticker = Ticker(1.0, clock)
    ticker.delay()
    clock.now += 2.3  # the first poll took 2.3 s: slots at 1 and 2 are gone
    assert ticker.delay() == pytest.approx(0.7)
    clock.now += 0.7
    assert ticker.delay() == pytest.approx(1.0)


ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78])")
NOISE = ("Traceback", "Aborted", "Unclosed", "Task was destroyed", "Exception ignored")


def spawn_track(
    url: str, *args: str, options: tuple[str, ...] = (), columns: int = 120
) -> tuple[pexpect.spawn, io.StringIO]:
    """`python -m cli_devops track` in a pseudo-terminal (30 rows, 120 columns unless given);
    returns it and its output."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("CPX_URL", "NO_COLOR", "COLUMNS", "LINES")
    }
    env.update(TERM="xterm-256color", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli_devops", "--cp-url", url, *options, "track", *args],
        env=env,
        dimensions=(30, columns),
        encoding="utf-8",
        timeout=30,
    )
    transcript = io.StringIO()
    child.logfile_read = transcript
    return child, transcript


def stop_with_ctrl_c(child: pexpect.spawn, transcript: io.StringIO) -> tuple[str, str]:
    """Press Ctrl+C; returns the terminal output before it and the output after it."""
    before = transcript.getvalue()
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, transcript.getvalue()[-2000:]
    for noise in NOISE:
        assert noise not in transcript.getvalue()
    return before, transcript.getvalue()[len(before) :]


def summary_lines(output: str, service: str) -> list[str]:
    """The plain lines from the summary title on (the terminal may echo ^C before it)."""
    plain = ANSI.sub("", output)
    return [line.strip() for line in plain[plain.index(f"{service}: ") :].splitlines()]


@pytest.mark.system
def test_track_live_view_in_a_terminal_then_summary_on_ctrl_c(sim):
    child, transcript = spawn_track(sim.url, "UserService", "--interval", "0.2")
    child.expect("poll 3 ")
    child.expect("2 of 3 instances healthy, needs 2")
    screen, after = stop_with_ctrl_c(child, transcript)

    assert "\x1b[?1049h" in screen  # drawn on the alternate screen ...
    assert "\x1b[?1049l" in after  # ... and the normal screen restored
    assert "\x1b[?25h" in after  # with its cursor
    plain = ANSI.sub("", screen)
    assert re.search(r"IP +Status +CPU trend +min avg max +Memory trend +min avg max", plain)
    for ip, status, cpu in [("10.0.0.10", "Unhealthy", "91%"), ("10.0.0.2", "Healthy", "90%"),
                            ("10.0.0.1", "Healthy", "10%")]:  # fmt: skip
        assert re.search(rf"{re.escape(ip)} +{status} +{cpu} +", plain)
    assert "███" in screen  # 90% and 91% as the highest sparkline level
    assert "▁▁▁" in screen  # 10% as the lowest

    title, groups, header, *rows = summary_lines(after, "UserService")[:6]
    assert re.fullmatch(r"UserService: \d+ polls over \d+s", title)
    assert groups.split() == ["CPU", "Memory"]
    assert header.split() == ["IP", "Status", "Samples", *["min", "avg", "max"] * 2, "Healthy"]
    assert [row.split()[:2] for row in rows] == [
        ["10.0.0.1", "Healthy"], ["10.0.0.2", "Healthy"], ["10.0.0.10", "Unhealthy"]
    ]  # fmt: skip
    assert int(rows[0].split()[2]) >= 3
    assert rows[0].split()[3:] == ["10", "10", "10", "20", "20", "20", "100%"]
    assert rows[2].split()[3:] == ["91", "91", "91", "15", "15", "15", "0%"]


@pytest.mark.system
def test_debug_lines_wait_until_the_live_view_is_closed(sim):
    child, transcript = spawn_track(
        sim.url, "UserService", "--interval", "0.2", options=("--debug",)
    )
    child.expect("poll 3 ")
    screen, after = stop_with_ctrl_c(child, transcript)
    assert "cli_devops: GET" not in screen  # nothing scribbled over the view ...
    restored = after.index("\x1b[?1049l")
    held = ANSI.sub("", after[restored:])
    assert held.count(f"cli_devops: GET {sim.url}/servers -> 200") >= 3  # ... shown after it
    assert held.index("cli_devops: GET") < held.index("UserService: ")  # before the summary


@pytest.mark.system
def test_summary_in_a_narrow_terminal_keeps_every_figure(sim):
    child, transcript = spawn_track(sim.url, "UserService", "--interval", "0.2", columns=44)
    child.expect("poll 2 ")
    _, after = stop_with_ctrl_c(child, transcript)
    text = " ".join(line.strip() for line in ANSI.sub("", after).splitlines())
    assert re.search(r"10\.0\.0\.10 Unhealthy: \d+ samples, CPU 91/91/91, memory 15/15/15, "
                     r"Healthy 0%", text)  # fmt: skip
    assert "…" not in text


def test_held_warnings_keep_the_last_lines_and_say_how_many_were_dropped():
    err = io.StringIO()
    env = Environment(stderr=err)
    with env.holding_warnings(keep=2):
        for n in range(5):
            env.warn(f"line {n}")
        assert err.getvalue() == ""
    env.warn("after")
    assert err.getvalue().splitlines() == [
        "cli_devops: (3 earlier lines not kept)",
        "cli_devops: line 3",
        "cli_devops: line 4",
        "cli_devops: after",
    ]


@pytest.mark.slow
@pytest.mark.system
def test_ctrl_c_mid_poll_stops_at_once_and_closes_cleanly(sim):
    child, transcript = spawn_track(
        sim.url, "UserService", "--interval", "0.2", options=("--timeout", "120")
    )
    child.expect("poll 2 ")
    sim.latency_ms = 60_000  # the next poll hangs on the server for a minute
    child.expect("polling for [1-9]")
    _, after = stop_with_ctrl_c(child, transcript)  # exits long before the answer is due
    assert re.fullmatch(r"UserService: \d+ polls over \d+s", summary_lines(after, "UserService")[0])


@pytest.mark.slow
def test_track_survives_an_api_outage(fleet):
    server = SimulatorServer(fleet, "127.0.0.1", 0)
    server.start()
    port = server.port
    env = {k: v for k, v in os.environ.items() if k not in ("CPX_URL", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "--cp-url", server.url, "track", "UserService",
         "--count", "12", "--interval", "0.2", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    polls: list[dict[str, Any]] = []

    def read_until(done: Callable[[], bool]) -> None:
        assert process.stdout is not None
        while not done():
            line = process.stdout.readline()
            assert line, "track ended early"
            polls.append(json.loads(line))

    try:
        read_until(lambda: sum(p["error"] is None for p in polls) >= 2)
        server.stop()
        read_until(lambda: sum(p["error"] is not None for p in polls) >= 2)
        server = SimulatorServer(fleet, "127.0.0.1", port)  # back on the same port
        server.start()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        server.stop()
    polls += [json.loads(line) for line in stdout.splitlines()]

    assert process.returncode == 0
    assert len(polls) == 12
    outcome = "".join("x" if p["error"] else "." for p in polls)
    assert re.fullmatch(r"\.{2,}x+\.+", outcome), outcome
    for failed in (p for p in polls if p["error"]):
        assert failed["instances"] == []
        assert failed["error"].startswith(f"cannot read the CPX API at {server.url}/servers: ")
    assert [(i["ip"], i["cpu"], i["memory"]) for i in polls[-1]["instances"]] == [
        ("10.0.0.1", 10, 20), ("10.0.0.2", 90, 90), ("10.0.0.10", 91, 15)
    ]  # fmt: skip
    assert stderr.count("cli_devops: cannot read the CPX API") == outcome.count("x")
    for noise in NOISE:
        assert noise not in stderr


def test_ctrl_c_ends_piped_records_cleanly(sim):
    env = {k: v for k, v in os.environ.items() if k not in ("CPX_URL", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "--cp-url", sim.url, "track", "GeoService",
         "--interval", "0.2", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = [process.stdout.readline(), process.stdout.readline()]
        stdout, stderr = stop_process(process)
    finally:
        process.kill()
    assert process.returncode == 130  # Ctrl+C, after the records written so far
    polls = [json.loads(line) for line in [*first, *stdout.splitlines()]]
    assert len(polls) >= 2
    assert all(len(p["instances"]) == 3 and p["error"] is None for p in polls)
    assert stderr == ""


@pytest.mark.system
@pytest.mark.parametrize("key", ["q", "\x1b"], ids=["q", "escape"])
def test_q_and_escape_end_the_live_view_as_ctrl_c_does(sim, key):
    child, transcript = spawn_track(sim.url, "UserService", "--interval", "0.2")
    child.expect("poll 2 ")
    before = transcript.getvalue()
    child.send(key)
    child.expect(pexpect.EOF)
    child.close()
    after = transcript.getvalue()[len(before) :]
    assert child.exitstatus == 0, after[-2000:]
    assert "\x1b[?1049l" in after  # the normal screen is back
    assert "\x1b[?25h" in after  # with its cursor
    title = summary_lines(after, "UserService")[0]
    assert re.fullmatch(r"UserService: \d+ polls over \d+s", title)
    for noise in NOISE:
        assert noise not in after


@pytest.mark.system
def test_an_arrow_key_does_not_end_the_live_view(sim):
    child, transcript = spawn_track(sim.url, "UserService", "--interval", "0.2")
    child.expect("poll 2 ")
    child.send("\x1b[A")  # an arrow key begins with Escape but is not Escape
    child.expect("poll 4 ")
    stop_with_ctrl_c(child, transcript)


def test_piped_track_never_reads_stdin(sim):
    done = subprocess.run(
        [sys.executable, "-m", "cli_devops", "--cp-url", sim.url, "track", "UserService",
         "--count", "2", "--interval", "0.1", "-o", "json"],
        input="q\x1bq\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
