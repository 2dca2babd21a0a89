"""The exporter toolkit's flags, as node_exporter spells them, each tested by what it does:
listen addresses, the telemetry path, the cap on scrapes in flight, the exporter's own
metrics, `name[]` filtering, and the log's level and format."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from cli_devops.client import ClientSettings
from cli_devops.exporter import EventLog, Exporter, ServeOptions
from cli_devops.exporter.events import logfmt_value
from cli_devops.simulator import SimInstance

from .conftest import hermetic_environ, stop_process
from .scraping import GatedCpx, get, log_events, logfmt, wait_until


def families(text: str) -> list[str]:
    return sorted(family.name for family in text_string_to_metric_families(text))


def start_command(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`cli_devops exporter ARGS` in a process; returns it and the base URLs of its banner."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "exporter", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
    )  # fmt: skip
    assert process.stdout is not None
    banner = process.stdout.readline()
    return process, re.findall(r"(http://[^ ]+?)/[^ ]*(?: and on | \(shard)", banner)


def test_every_listen_address_serves_and_listen_stays_an_alias(sim):
    process, urls = start_command(
        "--cp-url", sim.url, "--web.listen-address", "127.0.0.1:0", "--listen", "127.0.0.1:0"
    )
    try:
        assert len(urls) == 2
        assert urls[0] != urls[1]
        for url in urls:
            assert get(url).status == 200
        out, err = stop_process(process)
    finally:
        process.kill()
        process.wait()
    assert (out, process.returncode) == ("", 130)  # stopped with Ctrl+C
    listening = [event["address"] for event in log_events(err) if event["msg"] == "listening"]
    assert listening == [url.removeprefix("http://") for url in urls]


def test_a_second_address_in_use_is_one_error_and_nothing_is_left_listening(cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(
            "--cp-url", "127.0.0.1:1", "exporter",
            "--web.listen-address", "127.0.0.1:0", "--web.listen-address", f"127.0.0.1:{port}",
        )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_the_telemetry_path_moves_the_metrics(sim):
    options = ServeOptions(telemetry_path="/cpx/metrics")
    with Exporter(ClientSettings(sim.url), options=options) as running:
        moved = get(running.url, "/cpx/metrics")
        old = get(running.url, "/metrics")
        landing = get(running.url, "/")
    assert moved.status == 200
    assert "cpx_up" in families(moved.text)
    assert (old.status, old.text) == (404, "not found; see /cpx/metrics\n")
    assert 'href="/cpx/metrics"' in landing.text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("metrics", "invalid --web.telemetry-path 'metrics': it must start with /"),
        ("/a b", "invalid --web.telemetry-path '/a b': only printable ASCII"),
        ("/m?x=1", "invalid --web.telemetry-path '/m?x=1': only printable ASCII"),
        ("/-/healthy", "invalid --web.telemetry-path '/-/healthy': /-/healthy is the exporter's"),
        ("/", "invalid --web.telemetry-path '/': / is the exporter's own page"),
    ],
)
def test_a_telemetry_path_that_cannot_be_served_is_one_error(cli, path, message):
    result = cli("--cp-url", "127.0.0.1:1", "exporter", "--web.telemetry-path", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"cli_devops: error: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_scrapes_beyond_max_requests_get_503_and_a_warning(fleet):
    log = io.StringIO()
    with GatedCpx(fleet, lambda path: path == "/servers") as api:
        options = ServeOptions(max_requests=1)
        with Exporter(ClientSettings(api.url), options=options, events=EventLog(log)) as running:
            first: list[int] = []
            scraper = threading.Thread(target=lambda: first.append(get(running.url).status))
            scraper.start()
            wait_until(lambda: api.requests["/servers"] >= 1, "the first scrape reading CPX")
            refused = get(running.url)
            health = get(running.url, "/-/healthy")
            api.open()
            scraper.join(60)
            after = get(running.url)
    assert (refused.status, refused.text) == (503, "too many scrapes in flight; try again later\n")
    assert health.status == 200  # the cap is on scrapes only
    assert first == [200]
    assert after.status == 200  # the slot was given back
    (event,) = [e for e in log_events(log.getvalue()) if e["msg"] == "scrape refused"]
    assert event["level"] == "warn"
    assert event["cause"] == "too many scrapes in flight"
    assert event["max_requests"] == "1"


def test_max_requests_0_is_no_limit(fleet):
    unlimited = ServeOptions(max_requests=0)
    with (
        GatedCpx(fleet, lambda path: path == "/servers") as api,
        Exporter(ClientSettings(api.url), options=unlimited) as running,
    ):
        answers: list[int] = []
        scrapers = [
            threading.Thread(target=lambda: answers.append(get(running.url).status))
            for _ in range(3)
        ]
        for scraper in scrapers:
            scraper.start()
        wait_until(lambda: running.reader.waiting == 3, "three scrapes in flight")
        api.open()
        for scraper in scrapers:
            scraper.join(60)
    assert answers == [200, 200, 200]


def test_disable_exporter_metrics_leaves_out_process_metrics_only(sim):
    with Exporter(ClientSettings(sim.url)) as running:
        full = families(get(running.url).text)
    options = ServeOptions(exporter_metrics=False)
    with Exporter(ClientSettings(sim.url), options=options) as running:
        lean = families(get(running.url).text)
    process = [name for name in full if name.startswith("process_")]
    assert "process_cpu_seconds" in process
    assert lean == [name for name in full if not name.startswith("process_")]
    assert "cpx_exporter_build_info" in lean


def test_name_filter_returns_exactly_the_families_asked_for(sim):
    with Exporter(ClientSettings(sim.url)) as running:
        one = get(running.url, "/metrics?name[]=cpx_up")
        two = get(
            running.url,
            "/metrics?name[]=cpx_instance_healthy&name%5B%5D=process_resident_memory_bytes",
        )
        none = get(running.url, "/metrics?name[]=no_such_metric")
        unfiltered = get(running.url, "/metrics?name=cpx_up")
    assert families(one.text) == ["cpx_up"]
    assert families(two.text) == ["cpx_instance_healthy", "process_resident_memory_bytes"]
    assert (none.status, none.text) == (200, "")
    assert len(families(unfiltered.text)) > 5


def test_asking_only_for_process_metrics_does_not_read_cpx(fleet):
    with GatedCpx(fleet, lambda path: False) as api:
        with Exporter(ClientSettings(api.url)) as running:
            answer = get(running.url, "/metrics?name[]=process_cpu_seconds_total")
        assert families(answer.text) == ["process_cpu_seconds"]
        assert sum(api.requests.values()) == 0


def test_log_level_and_json_format_from_the_command_line():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        cpx = f"http://127.0.0.1:{closed.getsockname()[1]}"
    process, urls = start_command(
        "--cp-url", cpx, "--retries", "0", "--listen", "127.0.0.1:0",
        "--log.level", "debug", "--log.format", "json",
    )  # fmt: skip
    try:
        assert get(urls[0]).status == 200
        _, err = stop_process(process)
    finally:
        process.kill()
        process.wait()
    events = [json.loads(line) for line in err.splitlines()]
    assert [list(event)[:3] for event in events] == [["ts", "level", "msg"]] * len(events)
    kinds = [(event["level"], event["msg"]) for event in events]
    assert kinds[0] == ("info", "listening")
    assert ("debug", "request") in kinds
    assert kinds[-1] == ("info", "stopping")
    (failure,) = [event for event in events if event["msg"] == "CPX read failed"]
    assert failure["level"] == "warn"
    assert failure["cpx_up"] == 0
    assert failure["cause"].startswith(f"cannot read the CPX API at {cpx}/servers")


def test_log_level_error_keeps_warnings_and_info_out():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        cpx = f"http://127.0.0.1:{closed.getsockname()[1]}"
    process, urls = start_command(
        "--cp-url", cpx, "--retries", "0", "--listen", "127.0.0.1:0", "--log.level", "error"
    )
    try:
        assert get(urls[0]).status == 200
        out, err = stop_process(process)
    finally:
        process.kill()
        process.wait()
    assert (out, err, process.returncode) == ("", "", 130)  # stopped with Ctrl+C


def test_unread_instances_are_one_warning_with_the_commonest_cause(sim):
    sim.fleet.instances["10.0.0.7"] = SimInstance("GeoService", 5, 5, status=500)
    sim.fleet.instances["10.0.0.8"] = SimInstance("GeoService", 5, 5, status=500)
    sim.fleet.instances["10.0.0.9"] = SimInstance("GeoService", 0, 0, raw=b'{"cpu": "lots"}')
    log = io.StringIO()
    with Exporter(ClientSettings(sim.url, retries=0), events=EventLog(log)) as running:
        assert get(running.url).status == 200
    (event,) = log_events(log.getvalue())
    assert event["level"] == "warn"
    assert event["msg"] == "instances not read"
    assert (event["unread"], event["instances"]) == ("3", "10")
    assert "500" in event["cause"]
    assert (event["cause_count"], event["causes"]) == ("2", "2")


@given(st.text())
def test_any_value_is_one_logfmt_line_that_reads_back(value):
    log = io.StringIO()
    EventLog(log).warn("scrape failed", cause=value)
    (line,) = log.getvalue().splitlines()
    assert log.getvalue() == line + "\n"
    assert logfmt(line)["cause"] == value
    assert all(char.isprintable() for char in line)
    assert logfmt_value(value) == line.split(" cause=", 1)[1]
