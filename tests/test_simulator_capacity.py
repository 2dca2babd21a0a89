"""The simulator's capacity: its request path's shortcuts keep every answer right, and
`simulate --workers N` serves one port from N processes, stopped as one."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli_devops.simulator import WORKERS_SUPPORTED, Fleet, SimInstance, SimulatorServer

from .conftest import hermetic_environ, run_process, stop_process

needs_workers = pytest.mark.skipif(
    not WORKERS_SUPPORTED, reason="several simulator processes need Linux (SO_REUSEPORT)"
)


def test_repeated_headers_on_one_connection_are_still_applied_each_time():
    """Headers that change nothing are remembered per connection; those that matter are not."""
    fleet = Fleet({"10.0.0.1": SimInstance("UserService", 10, 20)})
    with SimulatorServer(fleet, "127.0.0.1", 0, token="t") as sim:
        connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
        seen = []
        auth = {"Authorization": "Bearer t"}
        for headers, body in [
            ({}, None),
            ({}, None),
            (auth, None),
            (auth, None),
            (auth, b"ignored body"),
            (auth, b"ignored body"),
            ({}, None),
            ({"Connection": "close"}, None),
        ]:
            connection.request("GET", "/10.0.0.1", body=body, headers=headers)
            response = connection.getresponse()
            seen.append((response.status, response.read(), response.getheader("Connection")))
        connection.close()
        opened = sim.connections_opened
    ok = (200, b'{"cpu": "10%", "memory": "20%", "service": "UserService"}', None)
    denied = (401, b'{"error": "Unauthorized"}', None)
    assert seen == [denied, denied, ok, ok, ok, ok, denied, (*denied[:2], "close")]
    assert opened == 1


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def worker_of_a_new_connection(port: int) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/10.0.0.1")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        return response.getheader("X-Worker")
    finally:
        connection.close()


@pytest.mark.slow
@needs_workers
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_simulate_with_two_workers_serves_the_fleet_from_both_and_stops_them_all(cli, stop):
    child = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "simulate", "--port", "0", "--fleet", "40",
         "--seed", "5", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hermetic_environ(),
    )  # fmt: skip
    workers: list[int] = []
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        match = re.fullmatch(
            r"CPX simulator listening on (http://127\.0\.0\.1:(\d+)) \(40 instances, seed 5, "
            r"2 worker processes\); press Ctrl\+C to stop\n",
            line,
        )
        assert match, line
        workers = children_of(child.pid)
        assert len(workers) == 1
        result = cli("--cp-url", match.group(1), "services", "-o", "json")
        assert result.exit_code == 0, result.stderr
        expected = {ip: sim.service for ip, sim in Fleet.generate(40, seed=5).instances.items()}
        assert {row["ip"]: row["service"] for row in json.loads(result.stdout)} == expected
        # The kernel spreads new connections over both listeners: 40 all landing on one of two
        # would be a one in 2**39 chance.
        answered = {worker_of_a_new_connection(int(match.group(2))) for _ in range(40)}
        assert answered == {"1", "2"}
    finally:
        rest, err = stop_process(child, stop, timeout=30)
    assert child.returncode == (130 if stop == signal.SIGINT else 0)
    assert "Traceback" not in err
    assert rest == ""
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


@needs_workers
def test_simulate_with_workers_on_a_busy_port_is_a_usage_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_process("simulate", "--port", str(port), "--workers", "2")
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_do_not_apply_to_the_reference_server(cli):
    result = cli("simulate", "--reference", "--workers", "2")
    assert result.exit_code == 2
    assert "--workers does not apply to --reference (it is single-threaded)" in result.stderr


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_must_be_at_least_one(cli, workers):
    result = cli("simulate", "--workers", workers)
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.stderr
