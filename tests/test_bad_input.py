"""Bad input never crashes the tool and never loses the good data around it."""

from __future__ import annotations

import json
import socket

import pytest

from cli_devops.simulator import Fleet, SimInstance, SimulatorServer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_api_is_exit_3_with_one_helpful_line(cli):
    url = f"http://127.0.0.1:{closed_port()}"
    result = cli("--cp-url", url, "services")
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert url in lines[0]
    assert "--cp-url" in lines[0] and "CPX_URL" in lines[0] and "--demo" in lines[0]


def test_debug_shows_the_traceback_and_request_log(cli, sim):
    url = f"http://127.0.0.1:{closed_port()}"
    result = cli("--debug", "--cp-url", url, "services")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr
    ok = cli("--debug", "--cp-url", sim.url, "services", "-o", "json")
    assert f"GET {sim.url}/servers -> 200" in ok.stderr


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1, 2]", "answer is not a JSON object"),
        (b'{"cpu": "1%", "memory": "1%"}', "service is missing"),
        (b'{"cpu": "1%", "memory": "1%", "service": 7}', "service is not a string"),
        (
            b'{"cpu": "1%", "memory": "1%", "service": " \\u001b "}',
            "service is empty or has no printable characters",
        ),
        (
            b'{"cpu": "1%", "memory": "1%", "service": "' + b"S" * 257 + b'"}',
            "service is longer than 256 characters",
        ),
        (b'{"cpu": "abc", "memory": "1%", "service": "UserService"}', "cpu is not a percentage"),
        (b'{"memory": "1%", "service": "UserService"}', "cpu is missing"),
        (b'{"cpu": "1%", "memory": "120%", "service": "UserService"}', "memory is outside 0-100%"),
        (b'{"cpu": 1e999, "memory": "1%", "service": "UserService"}', "cpu is outside 0-100%"),
        (b'{"cpu": "1%", "memory": NaN, "service": "UserService"}', "memory is not a number"),
        (b'{"cpu": true, "memory": "1%", "service": "UserService"}', "cpu is not a percentage"),
        (b"{not json", "answer is not valid JSON"),
        (b'{"service": "\xff"}', "answer is not valid JSON"),
        (b"[" * 5_000 + b"]" * 5_000, "answer is nested too deeply"),
        (b'{"cpu": ' + b"[" * 64 + b"]" * 64 + b"}", "answer is nested too deeply"),  # 65 levels
        (
            b'{"cpu": ' + b"[" * 63 + b"]" * 63 + b', "memory": "1%", "service": "S"}',
            "cpu is not a percentage",
        ),  # 64 levels: the limit
        (b"[" + b"{}," * 20_000 + b"{}]", "answer has too many arrays or objects"),
    ],
)
def test_invalid_instance_answer_is_unknown_with_reason(cli, sim, fleet, raw, reason):
    fleet.instances["10.0.0.1"].raw = raw
    result = cli("--cp-url", sim.url, "services", "-o", "json")
    assert result.exit_code == 0
    records = {r["ip"]: r for r in json.loads(result.stdout)}
    assert len(records) == 10
    bad = records["10.0.0.1"]
    assert (bad["status"], bad["cpu"], bad["memory"], bad["error"]) == (
        "Unknown",
        None,
        None,
        reason,
    )
    assert records["10.0.0.3"]["cpu"] == 50.5  # the rest is intact
    assert f"1 of 10 instances could not be read (1 × {reason})" in result.stderr


def test_http_error_instance_is_unknown(cli, sim, fleet):
    fleet.instances["10.0.0.4"].status = 500
    fleet.instances["10.0.0.5"].status = 404
    result = cli("--cp-url", sim.url, "services")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:-1]}
    assert lines["10.0.0.4"].split()[-3:] == ["-", "HTTP", "500"]
    assert "Unknown" in lines["10.0.0.5"]
    assert result.stdout.splitlines()[0].split()[-1] == "Reason"
    assert "2 of 10 instances could not be read" in result.stderr


def test_unknown_with_known_service_counts_in_status(cli, sim, fleet):
    fleet.instances["10.0.0.1"].raw = b'{"cpu": "x", "memory": "1%", "service": "UserService"}'
    result = cli("--cp-url", sim.url, "status", "--service", "UserService", "-o", "json")
    (row,) = json.loads(result.stdout)
    assert (row["healthy"], row["unhealthy"], row["unknown"]) == (1, 1, 1)
    assert row["cpu_avg"] == (90 + 91) / 2


@pytest.mark.parametrize("value", ['"61"', "61", '"61.5%"', '" 61 %"', "61.5"])
def test_accepted_percent_forms(cli, sim, fleet, value):
    fleet.instances[
        "10.0.0.1"
    ].raw = f'{{"cpu": {value}, "memory": "4%", "service": "UserService"}}'.encode()
    records = json.loads(cli("--cp-url", sim.url, "services", "-o", "json").stdout)
    assert records[0]["cpu"] == float(value.strip('"').replace("%", "").strip())
    assert records[0]["status"] == "Healthy"


def test_junk_servers_entries_are_skipped_and_never_requested(cli):
    junk = ["../etc/passwd", "example.com", 42, None, "10.0.0.1/servers", "", "http://10.0.0.1",
            "10.0.0.1?x=1", "fe80::1%eth0", ["10.0.0.1"], "10.0.0.256"]  # fmt: skip
    fleet = Fleet({"10.0.0.1": SimInstance("A", 1, 1), "10.0.0.2": SimInstance("A", 2, 2)},
                  junk_servers=[*junk, "10.0.0.1"])  # fmt: skip
    with SimulatorServer(fleet) as server:
        result = cli("--cp-url", server.url, "services", "-o", "json")
        assert result.exit_code == 0
        assert [r["ip"] for r in json.loads(result.stdout)] == ["10.0.0.1", "10.0.0.2"]
        assert f"skipped {len(junk)} /servers entries that are not IP addresses" in result.stderr
        assert "ignored 1 duplicate /servers entry\n" in result.stderr
        assert set(server.request_paths) == {"/servers", "/10.0.0.1", "/10.0.0.2"}
        assert server.request_paths["/10.0.0.1"] == 1


@pytest.mark.parametrize("body", [b'{"servers": []}', b"not json", b'"10.0.0.1"'])
def test_unusable_servers_answer_is_exit_3(cli, body):
    fleet = Fleet({})
    with SimulatorServer(fleet) as server:
        fleet.servers_override = body
        result = cli("--cp-url", server.url, "services")
        assert result.exit_code == 3
        assert "/servers" in result.stderr
        assert "Traceback" not in result.stderr


def test_control_characters_never_reach_the_terminal(cli):
    evil = "Evil\x1b[2J\x1b]0;pwned\x07Service\r\n\u202e"
    fleet = Fleet({"10.0.0.1": SimInstance(evil, 1, 1), "10.0.0.2": SimInstance(evil, 1, 1)})
    with SimulatorServer(fleet) as server:
        for command in ("services", "status", "unhealthy-services"):
            for fmt in ("table", "csv"):
                result = cli("--cp-url", server.url, command, "-o", fmt)
                assert "\x1b" not in result.stdout and "\x07" not in result.stdout
                assert "\r" not in result.stdout and "\u202e" not in result.stdout
        table = cli("--cp-url", server.url, "services").stdout
        assert "Evil[2J]0;pwnedService" in table
        records = json.loads(cli("--cp-url", server.url, "services", "-o", "json").stdout)
        assert records[0]["service"] == evil  # JSON keeps the original, escaped
        bad = cli("--cp-url", server.url, "status", "--service", "Evi")
        assert bad.exit_code == 2 and "\x1b" not in bad.stderr


def test_unread_summary_names_the_three_most_common_reasons(cli, sim, fleet):
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        fleet.instances[ip].status = 500
    for ip in ("10.0.0.4", "10.0.0.5"):
        fleet.instances[ip].raw = b"[]"
    fleet.instances["10.0.0.6"].status = 404
    fleet.instances["10.0.0.7"].raw = b"{not json"
    result = cli("--cp-url", sim.url, "--retries", "0", "services", "-o", "json")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1].startswith(
        "cli_devops: 7 of 10 instances could not be read "
        "(3 × HTTP 500, 2 × answer is not a JSON object, 1 × "
    )
    assert result.stderr.splitlines()[-1].endswith(", 1 for other reasons)")
