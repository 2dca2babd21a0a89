"""The four fleet commands, run as a user runs them, against the simulator on loopback."""

from __future__ import annotations

import csv
import io
import json
import re
import sys

import pexpect
import pytest

from cli_devops.environment import Environment
from cli_devops.health import Thresholds
from cli_devops.model import Instance
from cli_devops.render import write_report
from cli_devops.reports import instances_report
from cli_devops.simulator import Fleet, SimInstance, SimulatorServer

from .conftest import hermetic_environ


def expected_status(cpu: float, memory: float, threshold: float = 90) -> str:
    return "Unhealthy" if cpu > threshold or memory > threshold else "Healthy"


def test_services_json_matches_the_fleet_in_numeric_ip_order(cli, sim, fleet):
    result = cli("--cp-url", sim.url, "services", "-o", "json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["ip"] for r in records] == [f"10.0.0.{n}" for n in range(1, 11)]
    for record in records:
        truth = fleet.instances[record["ip"]]
        assert record == {
            "ip": record["ip"],
            "service": truth.service,
            "status": expected_status(truth.cpu, truth.memory),
            "cpu": truth.cpu,
            "memory": truth.memory,
            "error": None,
            "outlier": False,
        }
    assert result.stderr == ""
    lines = result.stdout.splitlines()  # one record per line, so grep and line tools work too
    assert lines[0] == "[" and lines[-1] == "]"
    assert [json.loads(line.rstrip(",")) for line in lines[1:-1]] == records


def test_health_boundary_90_is_healthy_91_is_not(cli, sim):
    records = {
        r["ip"]: r for r in json.loads(cli("--cp-url", sim.url, "services", "-o", "json").stdout)
    }
    assert records["10.0.0.2"]["status"] == "Healthy"  # cpu 90, memory 90
    assert records["10.0.0.10"]["status"] == "Unhealthy"  # cpu 91
    assert records["10.0.0.9"]["status"] == "Unhealthy"  # memory 91


def test_thresholds_are_options(cli, sim):
    result = cli("--cp-url", sim.url, "--cpu-threshold", "95", "--mem-threshold", "99",
                 "services", "-o", "json")  # fmt: skip
    records = {r["ip"]: r for r in json.loads(result.stdout)}
    assert records["10.0.0.10"]["status"] == "Healthy"  # 91 <= 95
    assert records["10.0.0.4"]["status"] == "Healthy"  # 95 <= 95
    assert records["10.0.0.5"]["status"] == "Unhealthy"  # 99 cpu > 95
    assert records["10.0.0.6"]["status"] == "Unhealthy"  # memory 100 > 99


def test_services_table_when_piped_is_plain_aligned_text(cli, sim):
    result = cli("--cp-url", sim.url, "services")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["IP", "Service", "Status", "CPU", "Memory"]
    assert lines[1].split() == ["10.0.0.1", "UserService", "Healthy", "10%", "20%"]
    assert lines[4].split() == ["10.0.0.4", "AuthService", "Unhealthy", "95%", "20%"]
    assert "50.5%" in lines[3]
    assert len(lines) == 11, "piped, every line of stdout is a row"
    assert result.stderr == "10 instances: 5 healthy, 5 unhealthy, 0 unknown\n"
    assert "\x1b" not in result.stdout


def test_services_csv_has_header_and_unrounded_numbers(cli, sim):
    result = cli("--cp-url", sim.url, "services", "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["ip", "service", "status", "cpu", "memory", "error", "outlier"]
    assert len(rows) == 10
    row = next(r for r in rows if r["ip"] == "10.0.0.3")
    assert (row["service"], row["cpu"], row["memory"], row["error"]) == (
        "AuthService",
        "50.5",
        "40",
        "",
    )


def test_services_filters_and_sort(cli, sim):
    result = cli("--cp-url", sim.url, "services", "--service", "userservice", "-o", "json")
    assert [r["ip"] for r in json.loads(result.stdout)] == ["10.0.0.1", "10.0.0.2", "10.0.0.10"]
    result = cli("--cp-url", sim.url, "services", "--status", "unhealthy", "--sort", "cpu",
                 "-o", "json")  # fmt: skip
    assert [r["cpu"] for r in json.loads(result.stdout)] == [99, 95, 91, 30, 7]
    result = cli("--cp-url", sim.url, "services", "--sort", "service", "-o", "json")
    assert [r["service"] for r in json.loads(result.stdout)][:2] == ["AuthService", "AuthService"]


def test_unknown_service_is_a_usage_error_with_suggestions(cli, sim):
    result = cli("--cp-url", sim.url, "status", "--service", "UserSrvice")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no service named 'UserSrvice'; did you mean UserService?" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_averages_and_flags(cli, sim):
    result = cli("--cp-url", sim.url, "status", "-o", "json")
    assert result.exit_code == 0
    by_name = {r["service"]: r for r in json.loads(result.stdout)}
    assert list(by_name) == ["AuthService", "GeoService", "MLService", "UserService"]
    assert by_name["UserService"] == {
        "service": "UserService", "instances": 3, "healthy": 2, "unhealthy": 1, "unknown": 0,
        "cpu_avg": (10 + 90 + 91) / 3, "memory_avg": (20 + 90 + 15) / 3, "status": "Healthy",
        "outliers": 0,
    }  # fmt: skip
    assert by_name["AuthService"]["status"] == "Unhealthy"
    assert by_name["AuthService"]["cpu_avg"] == (50.5 + 95) / 2
    assert (by_name["MLService"]["healthy"], by_name["MLService"]["status"]) == (0, "Unhealthy")


def test_status_table_rounds_for_reading(cli, sim):
    result = cli("--cp-url", sim.url, "status", "--service", "UserService")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Service", "Instances", "Healthy", "Unhealthy", "Unknown",
                                "Outliers", "CPU", "avg", "Memory", "avg", "Status"]  # fmt: skip
    assert lines[1].split() == ["UserService", "3", "2", "1", "0", "0", "63.7%", "41.7%", "Healthy"]


def test_unhealthy_services_flags_zero_and_one_healthy(cli, sim):
    result = cli("--cp-url", sim.url, "unhealthy-services", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"service": "AuthService", "healthy": 1, "instances": 2},
        {"service": "MLService", "healthy": 0, "instances": 2},
    ]
    result = cli("--cp-url", sim.url, "unhealthy-services", "--min-healthy", "1", "-o", "csv")
    assert result.exit_code == 1
    assert result.stdout == "service,healthy,instances\nMLService,0,2\n"


def test_unhealthy_services_says_plainly_when_none(cli):
    fleet = Fleet({f"10.1.0.{n}": SimInstance("A", 1, 1) for n in (1, 2)})
    with SimulatorServer(fleet) as server:
        result = cli("--cp-url", server.url, "unhealthy-services")
        assert result.exit_code == 0
        assert result.stdout == ""
        assert result.stderr == "No service has fewer than 2 healthy instances.\n"
        as_json = cli("--cp-url", server.url, "unhealthy-services", "-o", "json")
        assert as_json.stdout == "[]\n"


def test_service_with_exactly_two_healthy_is_not_flagged(cli, sim):
    result = cli("--cp-url", sim.url, "unhealthy-services", "--min-healthy", "2", "-o", "json")
    assert "GeoService" not in {r["service"] for r in json.loads(result.stdout)}
    assert "UserService" not in {r["service"] for r in json.loads(result.stdout)}
    result = cli("--cp-url", sim.url, "unhealthy-services", "--min-healthy", "3", "-o", "json")
    assert {"GeoService", "UserService"} <= {r["service"] for r in json.loads(result.stdout)}


def test_cp_url_forms_and_env_var(cli, sim, monkeypatch):
    port = sim.url.rsplit(":", 1)[1]
    for url in (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}/", sim.url):
        assert cli("--cp-url", url, "services", "-o", "json").exit_code == 0
    monkeypatch.setenv("CPX_URL", f"127.0.0.1:{port}")
    assert len(json.loads(cli("services", "-o", "json").stdout)) == 10


def test_bad_option_values_are_usage_errors(cli, sim):
    for args in (
        ("--cpu-threshold", "101", "services"),
        ("--cp-url", "ftp://x", "services"),
        ("services", "-o", "yaml"),
        ("services", "--sort", "nope"),
        ("status", "--min-healthy", "0"),
    ):
        result = cli("--cp-url", sim.url, *args) if args[0] != "--cp-url" else cli(*args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_terminal_without_utf8_gets_a_plain_table_instead_of_a_crash():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    env = Environment(stdout=stream, stdout_isatty=True, color=True, width=30)
    report = instances_report(
        [Instance("10.0.0.1", "AVeryLongServiceNameThatNeedsTruncating", 95, 20)], Thresholds()
    )
    write_report(report, "table", env)
    stream.flush()
    text = stream.buffer.getvalue().decode("ascii")  # type: ignore[attr-defined]
    assert text.splitlines()[1].split() == [
        "10.0.0.1", "AVeryLongServiceNameThatNeedsTruncating", "Unhealthy", "95%", "20%"
    ]  # fmt: skip


@pytest.mark.system
@pytest.mark.parametrize("columns", [60, 80])
def test_a_narrow_terminal_shortens_headers_before_cutting_names(columns):
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli_devops", "--demo", "status"],
        env={**hermetic_environ(), "TERM": "xterm", "PYTHONIOENCODING": "utf-8"},
        dimensions=(40, columns),
        encoding="utf-8",
        timeout=60,
    )
    output = child.read()
    child.close()
    assert child.exitstatus == 0, output
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip() for line in output.splitlines()]
    assert [line for line in lines if len(line) > columns] == []
    assert "…" not in output
    assert any(line.startswith("PermissionsService ") for line in lines)
    assert any(line.endswith("Unhealthy") for line in lines)
    header = lines[0].split()
    assert header[0] == "Service" and header[-1] == "Status"
    assert ("Inst" in header) == (columns < 90)
