"""`wait`, the deploy gate, against the simulator with services that heal and flap on a
schedule: ready, gave up, held off by a flap, a service that appears later, a misspelt name,
an unreachable API, and the progress line on a terminal."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from cli_devops.environment import Environment
from cli_devops.run_config import RunConfig
from cli_devops.settings import ClientSettings
from cli_devops.simulator import Flap, Fleet, SimInstance, SimulatorServer
from cli_devops.wait import WaitOptions, wait

from .conftest import hermetic_environ, stop_process


def add(fleet: Fleet, *instances: SimInstance) -> None:
    """Add instances to a running fleet (10.1.0.1, .2, ... in order)."""
    fleet.instances.update({f"10.1.0.{n}": instance for n, instance in enumerate(instances, 1)})


@pytest.fixture
def served() -> Iterator[tuple[Fleet, str]]:
    fleet = Fleet({})
    server = SimulatorServer(fleet, "127.0.0.1", 0)
    yield fleet, server.start()
    server.stop()


def last_json(stdout: str) -> dict[str, object]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    record: dict[str, object] = json.loads(lines[0])
    return record


def test_ready_at_once_exits_0_with_one_json_object(cli, served):
    fleet, url = served
    add(fleet, SimInstance("Pay", 10, 10), SimInstance("Pay", 20, 20), SimInstance("Pay", 95, 10))
    result = cli("--cp-url", url, "wait", "--service", "pay", "--min-healthy", "2", "-o", "json")
    assert result.exit_code == 0, result.stderr
    record = last_json(result.stdout)
    shown = ("service", "healthy", "min_healthy", "instances", "outcome")
    assert [record[key] for key in shown] == ["Pay", 2, 2, 3, "ready"]
    assert isinstance(record["waited_seconds"], float)
    assert result.stderr.startswith("cli_devops: Pay is ready: 2 healthy of 3 instances")


def test_piped_table_output_writes_nothing_on_stdout(cli, served):
    fleet, url = served
    fleet.instances["10.1.0.1"] = SimInstance("Pay", 10, 10)
    result = cli("--cp-url", url, "wait", "--service", "Pay", "--min-healthy", "1")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_gives_up_after_max_wait_with_exit_1_and_the_same_object(cli, served):
    fleet, url = served
    add(fleet, SimInstance("Pay", 10, 10), SimInstance("Pay", 99, 10))
    result = cli("--cp-url", url, "wait", "--service", "Pay", "--max-wait", "0.5",
                 "--interval", "0.1", "-o", "json")  # fmt: skip
    assert result.exit_code == 1
    record = last_json(result.stdout)
    assert record["outcome"] == "timed_out"
    assert record["healthy"] == 1 and record["instances"] == 2
    assert 0.5 <= float(record["waited_seconds"]) < 30  # type: ignore[arg-type]
    assert result.stderr.startswith("cli_devops: gave up after ")
    assert result.stderr.endswith("1 healthy of 2 instances, 2 needed\n")


@pytest.mark.slow
def test_a_flapping_service_never_passes_the_stable_window(cli, served):
    fleet, url = served
    now = time.time()
    flapping = Flap(now, down=0.3, period=0.6)
    add(fleet, SimInstance("Pay", 10, 10), SimInstance("Pay", 10, 10, flap=flapping))
    result = cli("--cp-url", url, "wait", "--service", "Pay", "--stable", "1s",
                 "--max-wait", "2.5s", "--interval", "0.1", "-o", "json")  # fmt: skip
    assert result.exit_code == 1, result.stdout
    assert last_json(result.stdout)["outcome"] == "timed_out"


@pytest.mark.slow
def test_a_service_that_heals_passes_once_stable(cli, served):
    fleet, url = served
    start = time.time()
    heals = Flap(start - 1, down=2.0)  # overloaded until one second from now, then healthy
    add(fleet, SimInstance("Pay", 10, 10), SimInstance("Pay", 10, 10, flap=heals))
    result = cli("--cp-url", url, "wait", "--service", "Pay", "--stable", "0.5",
                 "--max-wait", "1m", "--interval", "0.1", "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = last_json(result.stdout)
    assert record["healthy"] == 2
    assert time.time() - start >= 1.5  # healed after 1 s, then stable for 0.5 s


def test_a_service_not_there_yet_is_waited_for(cli, served):
    fleet, url = served
    fleet.instances["10.1.0.9"] = SimInstance("Other", 10, 10)
    deploy = threading.Timer(0.5, add, [fleet, SimInstance("Checkout", 1, 1)])
    deploy.start()
    try:
        result = cli("--cp-url", url, "wait", "--service", "Checkout", "--min-healthy", "1",
                     "--max-wait", "1m", "--interval", "0.1", "-o", "json")  # fmt: skip
    finally:
        deploy.cancel()
    assert result.exit_code == 0, result.stderr
    assert last_json(result.stdout)["healthy"] == 1


def test_a_misspelt_service_is_a_usage_error_with_a_suggestion(cli, served):
    fleet, url = served
    fleet.instances["10.1.0.1"] = SimInstance("PaymentService", 10, 10)
    result = cli("--cp-url", url, "wait", "--service", "PaymentServise", "--max-wait", "5")
    assert result.exit_code == 2
    assert result.stderr == (
        "cli_devops: error: no service named 'PaymentServise'; did you mean PaymentService?\n"
    )


def test_an_api_that_stays_unreachable_exits_3(cli):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli("--cp-url", f"127.0.0.1:{port}", "--retries", "0", "wait", "--service", "Pay",
                 "--max-wait", "0.5", "--interval", "0.1", "-o", "json")  # fmt: skip
    assert result.exit_code == 3
    record = last_json(result.stdout)
    assert record["outcome"] == "unreachable"
    assert "connection refused" in str(record["error"])
    assert len(result.stderr.splitlines()) == 1


def test_a_terminal_sees_one_progress_line_updated_in_place(served):
    fleet, url = served
    fleet.instances["10.1.0.9"] = SimInstance("Other", 10, 10)
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, stdout_isatty=True, width=60)
    app = RunConfig(settings=ClientSettings(base_url=url), env=env)
    status = wait(app, WaitOptions("Checkout", max_wait=1.5, interval=0.1))
    assert status == 1
    shown = out.getvalue()
    updates = shown.split("\r\x1b[K")
    assert len(updates) >= 3 and "\n" not in shown
    assert updates[1].startswith("Checkout: no instances yet, 0s of 2s")
    assert all(len(update) <= 59 for update in updates)
    assert updates[-1] == ""  # erased at the end; the outcome is on stderr
    assert err.getvalue() == "cli_devops: gave up after 2s: no instances yet\n"


def test_a_stable_window_longer_than_the_maximum_wait_is_a_usage_error(cli):
    result = cli("wait", "--service", "Pay", "--stable", "2m", "--max-wait", "1m")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "cli_devops: error: --stable is longer than --max-wait: the wait could never pass "
        "(see 'cli_devops wait --help')"
    )


def test_strict_is_no_option_of_wait_and_says_so(cli):
    result = cli("--strict", "wait", "--service", "Pay")
    assert result.exit_code == 2
    assert result.stderr.startswith("cli_devops: error: --strict is not an option of 'wait'; ")


def test_ctrl_c_stops_the_wait_with_exit_130_and_one_line():
    server = SimulatorServer(Fleet({"10.1.0.9": SimInstance("Other", 10, 10)}), "127.0.0.1", 0)
    url = server.start()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli_devops", "--cp-url", url, "wait", "--service",
             "Checkout", "--interval", "0.1", "--max-wait", "1m", "-o", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while server.request_paths["/servers"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        out, err = stop_process(process, signal.SIGINT)
    finally:
        server.stop()
    assert process.returncode == 130
    assert out == ""
    assert re.fullmatch(r"cli_devops: interrupted after \d+s: no instances yet\n", err), err


def test_a_new_name_that_shares_words_with_known_services_is_waited_for(cli, served):
    fleet, url = served
    add(fleet, SimInstance("GeoService", 10, 10), SimInstance("UserService", 10, 10))
    for name in ("NewService", "UserService2"):
        result = cli("--cp-url", url, "wait", "--service", name, "--max-wait", "0.2",
                     "--interval", "0.1")  # fmt: skip
        assert result.exit_code == 1, result.stderr
        assert result.stderr.endswith(": no instances yet\n")
    typo = cli("--cp-url", url, "wait", "--service", "geoservcie", "--max-wait", "5")
    assert typo.exit_code == 2
    assert typo.stderr.endswith("did you mean GeoService?\n")
