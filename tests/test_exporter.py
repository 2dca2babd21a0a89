"""The Prometheus exporter against the simulator over loopback: values, outages, shards, formats."""

from __future__ import annotations

import gzip
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from cli_devops.client import ClientSettings
from cli_devops.exporter import (
    Exporter,
    ServeOptions,
    Shard,
    parse_listen,
    parse_shard,
    scrape_deadline,
    shard_of,
)
from cli_devops.health import Thresholds
from cli_devops.settings import DEFAULT_EXPORTER_LISTEN
from cli_devops.simulator import Fleet, SimInstance, SimulatorServer

from .conftest import hermetic_environ, needs_ipv6, stop_process
from .scraping import (
    GatedCpx,
    expected_samples,
    get,
    log_events,
    samples,
    wait_until,
    without_duration,
)

CPX_FAMILIES = [
    "cpx_up",
    "cpx_instance_cpu_usage_ratio",
    "cpx_instance_memory_usage_ratio",
    "cpx_instance_healthy",
    "cpx_instance_scrape_success",
    "cpx_service_instances",
    "cpx_service_healthy_instances",
    "cpx_scrape_duration_seconds",
    "cpx_scrape_unrequested_instances",
]


@pytest.fixture
def exporter(sim: SimulatorServer) -> Iterator[Exporter]:
    with Exporter(ClientSettings(sim.url)) as running:
        yield running


def test_metrics_are_exactly_the_simulators_values(exporter, fleet):
    answer = get(exporter.url)
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(answer.text)
    assert without_duration(found) == expected_samples(fleet)
    assert found["cpx_scrape_duration_seconds", ()] > 0
    # the figures a user sees in `cli_devops services`, as ratios
    labels = (("cpx_service", "AuthService"), ("ip", "10.0.0.3"))
    assert found["cpx_instance_cpu_usage_ratio", labels] == 0.505
    assert found["cpx_instance_healthy", (("cpx_service", "UserService"), ("ip", "10.0.0.2"))] == 1
    assert found["cpx_service_healthy_instances", (("cpx_service", "MLService"),)] == 0


def test_every_family_has_help_and_type_and_process_metrics_are_there(exporter):
    text = get(exporter.url).text
    for name in CPX_FAMILIES:
        assert f"# TYPE {name} gauge\n" in text
        help_line = next(line for line in text.splitlines() if line.startswith(f"# HELP {name} "))
        assert len(help_line) > len(f"# HELP {name} ") + 10
    assert "\nprocess_cpu_seconds_total " in text
    assert "\nprocess_resident_memory_bytes " in text


def test_thresholds_decide_health_like_the_cli(sim, fleet):
    thresholds = Thresholds(cpu=95, memory=99)
    with Exporter(ClientSettings(sim.url), thresholds=thresholds) as running:
        found = samples(get(running.url).text)
    assert without_duration(found) == expected_samples(fleet, cpu_threshold=95, mem_threshold=99)
    assert found["cpx_instance_healthy", (("cpx_service", "AuthService"), ("ip", "10.0.0.4"))] == 1


def test_cpx_outage_is_cpx_up_0_with_http_200(sim, exporter):
    sim.fleet.servers_override = b"<html>maintenance</html>"
    answer = get(exporter.url)
    assert answer.status == 200
    found = samples(answer.text)
    assert set(without_duration(found)) == {
        ("cpx_up", ()),
        ("cpx_scrape_unrequested_instances", ()),
    }
    assert "cpx_scrape_duration_seconds" in {name for name, _ in found}
    assert found["cpx_up", ()] == 0
    sim.fleet.servers_override = None
    assert samples(get(exporter.url).text)["cpx_up", ()] == 1
    sim.stop()
    answer = get(exporter.url)
    assert answer.status == 200
    assert samples(answer.text)["cpx_up", ()] == 0


def test_instances_that_fail_show_only_as_scrape_failures(sim, exporter):
    sim.fleet.instances["10.0.0.7"] = SimInstance("GeoService", 5, 5, status=500)
    sim.fleet.instances["10.0.0.8"] = SimInstance(
        "GeoService", 0, 0, raw=b'{"service": "GeoService", "cpu": "lots", "memory": "1%"}'
    )
    found = samples(get(exporter.url).text)
    assert found["cpx_up", ()] == 1
    assert found["cpx_instance_scrape_success", (("ip", "10.0.0.7"),)] == 0
    assert found["cpx_instance_scrape_success", (("ip", "10.0.0.8"),)] == 0
    assert found["cpx_instance_scrape_success", (("ip", "10.0.0.9"),)] == 1
    reported = {dict(labels)["ip"] for name, labels in found if name == "cpx_instance_healthy"}
    assert reported == {f"10.0.0.{n}" for n in range(1, 11)} - {"10.0.0.7", "10.0.0.8"}
    # 10.0.0.8 still names its service, so it counts as an instance that is not healthy
    assert found["cpx_service_instances", (("cpx_service", "GeoService"),)] == 2
    assert found["cpx_service_healthy_instances", (("cpx_service", "GeoService"),)] == 0


def test_vanished_instances_and_services_drop_out_between_scrapes(sim, exporter):
    before = samples(get(exporter.url).text)
    assert ("cpx_service_instances", (("cpx_service", "GeoService"),)) in before
    for ip in ("10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.1"):
        del sim.fleet.instances[ip]
    after = samples(get(exporter.url).text)
    assert not [key for key in after if ("cpx_service", "GeoService") in key[1]]
    assert not [key for key in after if ("ip", "10.0.0.1") in key[1]]
    assert without_duration(after) == expected_samples(sim.fleet)
    assert after["cpx_service_instances", (("cpx_service", "UserService"),)] == 2


def test_a_service_name_that_cannot_be_encoded_does_not_break_the_scrape(sim, exporter):
    sim.fleet.instances["10.0.0.7"] = SimInstance(
        "x", 0, 0, raw=b'{"service": "Geo\\ud800", "cpu": "1%", "memory": "2%"}'
    )
    answer = get(exporter.url)
    assert answer.status == 200
    assert samples(answer.text)["cpx_service_instances", (("cpx_service", "Geo?"),)] == 1


def test_openmetrics_when_asked_and_the_same_values():
    fleet = Fleet({"10.0.0.1": SimInstance("A", 12, 34), "10.0.0.2": SimInstance("A", 99, 1)})
    with SimulatorServer(fleet) as server, Exporter(ClientSettings(server.url)) as running:
        accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        answer = get(running.url, headers={"Accept": accept})
        assert answer.status == 200
        assert answer.headers["content-type"].startswith(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )
        assert answer.text.endswith("# EOF\n")
        found = samples(answer.text, openmetrics=True)
        assert without_duration(found) == expected_samples(fleet)


def test_gzip_when_the_scraper_accepts_it(exporter, fleet):
    answer = get(exporter.url, headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    found = samples(gzip.decompress(answer.body).decode())
    assert without_duration(found) == expected_samples(fleet)


def test_landing_page_healthz_and_unknown_paths(exporter, sim):
    page = get(exporter.url, "/")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<a href="/metrics">' in page.text
    assert f"<code>{sim.url}</code>, shard 0/1" in page.text
    health = get(exporter.url, "/healthz")
    assert (health.status, health.text) == (200, "ok\n")
    missing = get(exporter.url, "/nope")
    assert missing.status == 404
    assert sim.request_paths["/servers"] == 0  # neither page reads CPX


@needs_ipv6
def test_exporter_listens_on_ipv6(sim, fleet):
    options = ServeOptions((parse_listen("[::1]:0"),))
    with Exporter(ClientSettings(sim.url), options=options) as running:
        assert running.url.startswith("http://[::1]:")
        found = without_duration(samples(get(running.url).text))
    assert found == expected_samples(fleet)


def test_shard_of_is_a_stable_hash_of_the_address():
    assert [shard_of("10.0.0.1", n) for n in (2, 3, 4, 7, 1000)] == [0, 0, 2, 2, 534]
    assert [shard_of("192.168.1.7", n) for n in (2, 3, 4, 7, 1000)] == [0, 2, 0, 2, 256]
    assert [shard_of("2001:db8::5", n) for n in (2, 3, 4, 7, 1000)] == [1, 1, 1, 4, 361]
    assert shard_of("::1", 1000) == shard_of("0:0:0:0:0:0:0:1", 1000) == 931
    assert Shard(0, 1).owns("10.9.9.9")


@pytest.mark.parametrize("count", [2, 3, 5])
def test_shards_are_disjoint_and_complete(count):
    fleet = Fleet.generate(120, seed=3)
    fleet.drift = False
    whole = expected_samples(fleet)
    with SimulatorServer(fleet) as server:
        parts = []
        for index in range(count):
            with Exporter(ClientSettings(server.url), shard=Shard(index, count)) as running:
                parts.append(without_duration(samples(get(running.url).text)))
    ips = [
        {dict(labels)["ip"] for name, labels in part if name == "cpx_instance_scrape_success"}
        for part in parts
    ]
    assert sum(len(part) for part in ips) == 120
    assert set().union(*ips) == set(fleet.instances)
    assert all(ips), "every shard of a 120-instance fleet gets some instances"
    for index, part in enumerate(ips):
        assert all(shard_of(ip, count) == index for ip in part)
    merged: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for part in parts:
        for key, value in part.items():
            if key[0].startswith("cpx_service_"):
                merged[key] = merged.get(key, 0) + value  # what sum() does in PromQL
            elif key[0] not in ("cpx_up", "cpx_scrape_unrequested_instances"):
                assert key not in merged
                merged[key] = value
    merged["cpx_up", ()] = 1
    merged["cpx_scrape_unrequested_instances", ()] = 0
    assert merged == whole


def test_concurrent_scrapes_share_one_read_of_cpx(small_fleet_gated):
    cpx, running = small_fleet_gated("/servers")
    results: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] = []

    def scrape() -> None:
        answer = get(running.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "60"})
        results.append(without_duration(samples(answer.text)))

    threads = [threading.Thread(target=scrape) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: running.reader.waiting == 4, "4 scrapes waiting on one read")
    assert running.reader.reads_started == 1
    cpx.open()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(result == expected_samples(cpx.fleet) for result in results)
    assert cpx.requests["/servers"] == 1
    assert all(cpx.requests[f"/{ip}"] == 1 for ip in cpx.fleet.instances)
    get(running.url)
    assert (running.reader.reads_started, cpx.requests["/servers"]) == (2, 2)


def test_a_scrape_joining_a_slow_read_keeps_its_own_deadline(small_fleet_gated):
    cpx, running = small_fleet_gated("/servers")
    first: list[float] = []
    patient = threading.Thread(
        target=lambda: first.append(
            samples(get(running.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "60"}).text)[
                "cpx_up", ()
            ]
        )
    )
    patient.start()
    wait_until(lambda: running.reader.waiting == 1, "the first scrape waiting on CPX")
    hurried = get(running.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})
    assert hurried.status == 200
    assert samples(hurried.text)["cpx_up", ()] == 0
    cpx.open()
    patient.join()
    assert first == [1]
    assert running.reader.reads_started == 2  # a 60 s read does not fit a 1 s scrape


@pytest.mark.slow
def test_the_scrape_timeout_header_bounds_the_read(small_fleet_gated):
    slow = {"/10.0.0.7", "/10.0.0.8", "/10.0.0.9"}  # every GeoService instance hangs
    cpx, running = small_fleet_gated(*slow)
    answer = get(running.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"})
    assert answer.status == 200
    found = samples(answer.text)
    assert found["cpx_up", ()] == 1
    assert found["cpx_scrape_duration_seconds", ()] >= 2.45  # deadline 2.5 s
    for path in slow:
        assert found["cpx_instance_scrape_success", (("ip", path[1:]),)] == 0
    assert found["cpx_instance_scrape_success", (("ip", "10.0.0.1"),)] == 1
    assert not [key for key in found if ("cpx_service", "GeoService") in key[1]]
    assert found["cpx_service_healthy_instances", (("cpx_service", "UserService"),)] == 2
    assert all(cpx.requests[path] == 1 for path in slow)


@pytest.fixture
def small_fleet_gated(fleet):  # type: ignore[no-untyped-def]
    """Start a gated CPX (holding the given paths) and an exporter reading it."""
    stack: list[tuple[GatedCpx, Exporter]] = []

    def start(*held: str) -> tuple[GatedCpx, Exporter]:
        cpx = GatedCpx(fleet, lambda path: path in held).__enter__()
        running = Exporter(ClientSettings(cpx.url, timeout=60))
        running.start()
        stack.append((cpx, running))
        return cpx, running

    yield start
    for cpx, running in stack:
        cpx.open()
        running.stop()
        cpx.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("header", "deadline"),
    [(None, 9.5), ("10", 9.5), ("1", 0.5), ("0.4", 0.2), ("30.5", 30.0), ("1e9", 299.5),
     ("", 9.5), ("abc", 9.5), ("-3", 9.5), ("0", 9.5), ("nan", 9.5), ("inf", 9.5)],
)  # fmt: skip
def test_scrape_deadline_from_prometheus_header(header, deadline):
    assert scrape_deadline(header) == deadline


def test_parse_shard_and_listen():
    assert parse_shard("0/1") == Shard(0, 1)
    assert parse_shard(" 2/3 ") == Shard(2, 3)
    assert str(Shard(1, 4)) == "1/4"
    assert parse_listen("127.0.0.1:8095") == ("127.0.0.1", 8095)
    assert parse_listen(":9") == ("0.0.0.0", 9)
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen("exporter.local:0") == ("exporter.local", 0)
    assert DEFAULT_EXPORTER_LISTEN == "127.0.0.1:8095"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shard", "2/2"), "invalid --shard '2/2': expected K/N with 0 <= K < N, like 0/3"),
        (("--shard", "0/0"), "invalid --shard '0/0'"),
        (("--shard", "a/b"), "invalid --shard 'a/b'"),
        (("--shard", "1"), "invalid --shard '1'"),
        (
            ("--listen", "8095"),
            "invalid --web.listen-address '8095': expected HOST:PORT, like 127.0.0.1:8095",
        ),
        (("--listen", "::1:80"), "invalid --web.listen-address '::1:80'"),
        (("--listen", "host:99999"), "invalid --web.listen-address 'host:99999'"),
    ],
)
def test_bad_exporter_options_are_usage_errors(cli, args, message):
    result = cli("--cp-url", "127.0.0.1:1", "exporter", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"cli_devops: error: {message}")
    assert "Traceback" not in result.stderr


def test_address_in_use_is_a_usage_error(cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("--cp-url", "127.0.0.1:1", "exporter", "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == 2
    assert result.stderr == (
        f"cli_devops: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


# A test run in a background job inherits SIGINT ignored, and Python keeps it ignored; the
# child restores Ctrl+C's usual KeyboardInterrupt before running the command.
RUN_WITH_CTRL_C = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from cli_devops.cli import main; main()"
)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_exporter_command_serves_until_stopped(sim, fleet, stop_signal):
    env = {k: v for k, v in os.environ.items() if k not in ("CPX_URL", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_CTRL_C, "--cp-url", sim.url, "--cpu-threshold", "95",
         "exporter", "--listen", "127.0.0.1:0", "--shard", "0/1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split("/metrics", 1)[0]
        assert line == (
            f"Serving CPX metrics on {url}/metrics (shard 0/1, CPX API {sim.url}); "
            "press Ctrl+C to stop\n"
        )
        found = without_duration(samples(get(url).text))
        assert found == expected_samples(fleet, cpu_threshold=95)
        out, err = stop_process(process, stop_signal)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == (130 if stop_signal == signal.SIGINT else 0)
    assert out == ""
    listening, stopping = log_events(err)
    assert listening["level"] == stopping["level"] == "info"
    assert listening["msg"] == "listening"
    assert listening["address"] == url.removeprefix("http://")
    assert listening["path"] == "/metrics"
    assert stopping["msg"] == "stopping"


def test_exporter_command_says_on_stderr_why_cpx_up_is_0():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        cpx = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if k not in ("CPX_URL", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "--cp-url", cpx, "exporter", "--listen", ":0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"\((http://127\.0\.0\.1:\d+)/metrics from this machine\)", banner)
        assert found, banner
        answer = get(found.group(1))
        assert answer.status == 200
        assert samples(answer.text)["cpx_up", ()] == 0
        _, err = stop_process(process, signal.SIGTERM)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    failures = [event for event in log_events(err) if event["level"] == "warn"]
    assert failures == [
        {
            "ts": failures[0]["ts"],
            "level": "warn",
            "msg": "CPX read failed",
            "cpx_up": "0",
            "cause": f"cannot read the CPX API at {cpx}/servers: connection failed: "
            "connection refused (after 4 attempts).",
        }
    ]


def test_other_commands_do_not_import_prometheus_client(sim):
    code = (
        "import sys\nfrom cli_devops.cli import run\n"
        f"code = run(['--cp-url', {sim.url!r}, 'status', '-o', 'json'])\n"
        "print(int(code), 'prometheus_client' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stderr.splitlines()[-1] == "0 False"


@pytest.mark.parametrize(
    ("listen", "family", "loopback"),
    [
        (":0", "IPv4", "127.0.0.1"),
        ("0.0.0.0:0", "IPv4", "127.0.0.1"),
        pytest.param("[::]:0", "IPv6", "[::1]", marks=needs_ipv6),
    ],
)
def test_the_banner_says_every_interface_when_it_listens_on_every_interface(
    sim, listen, family, loopback
):
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_CTRL_C, "--cp-url", sim.url, "exporter",
         "--listen", listen],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(
            rf"Serving CPX metrics on port (\d+) of every {family} interface "
            rf"\((http://{re.escape(loopback)}:(\d+))/metrics from this machine\) "
            rf"\(shard 0/1, CPX API {re.escape(sim.url)}\); press Ctrl\+C to stop\n",
            line,
        )
        assert match, line
        assert match.group(1) == match.group(3)
        assert get(match.group(2)).status == 200
        stop_process(process)
    finally:
        process.kill()
        process.wait()
