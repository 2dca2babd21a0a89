"""`track` in its piped forms: one record per poll, failed polls included."""

from __future__ import annotations

import csv
import io
import json
import socket

from cli_devops.track import next_delay


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
    assert list(rows[0]) == ["time", "ip", "service", "status", "cpu", "memory", "error"]
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


def test_next_delay_subtracts_the_poll_duration():
    assert next_delay(started=100.0, now=100.5, interval=3.0) == 2.5
    assert next_delay(started=100.0, now=104.0, interval=3.0) == 0.0
