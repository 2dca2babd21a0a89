"""The fleet read from a real Prometheus scraping two exporter shards of a drift-free simulator.

Like tests/test_prometheus.py these need the `prometheus` package; they fail, not skip,
without it.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pexpect
import pytest

from cli_devops.client import ClientSettings
from cli_devops.exporter import Exporter, Shard, shard_of
from cli_devops.run_config import RunConfig, read_snapshot
from cli_devops.settings import PrometheusSettings
from cli_devops.simulator import Fleet, SimInstance, SimulatorServer
from cli_devops.sources.prometheus import fetch_fleet

from .scraping import GatedCpx, RunningPrometheus, free_port, query, running_prometheus
from .test_track import ANSI, spawn_track, summary_lines


def drift_free_fleet() -> Fleet:
    """120 generated instances, fixed in time, and figures that are not whole percentages."""
    generated = Fleet.generate(120, seed=11)
    instances = dict(generated.instances)
    instances["10.0.9.1"] = SimInstance("OddService", 50.5, 33.3)
    instances["10.0.9.2"] = SimInstance("OddService", 0.1, 99.99)
    instances["10.0.9.3"] = SimInstance("OddService", 12.345678, 90)
    instances["10.0.9.4"] = SimInstance("OddService", 0, 100)
    return Fleet(instances, drift=False)


class Stack(NamedTuple):
    sim: SimulatorServer
    fleet: Fleet
    shards: list[Exporter]
    prometheus: RunningPrometheus
    ready: list[float]
    """When Prometheus held every instance as the fleet is, after the start or the last test
    that changed a figure and set it back (the last entry)."""

    def settings(self, **options: object) -> PrometheusSettings:
        return PrometheusSettings(ClientSettings(self.prometheus.url), **options)  # type: ignore[arg-type]

    def wait_for_history(self, seconds: float) -> None:
        """Until Prometheus holds `seconds` of samples of the whole fleet as it is."""
        self.prometheus.poll(lambda: time.time() - self.ready[-1] >= seconds, f"{seconds}s")

    def target(self, index: int) -> str:
        return urllib.parse.urlsplit(self.shards[index].url).netloc


def wait_for_fleet(stack: Stack, expected_up: dict[str, float]) -> None:
    """Until Prometheus has every instance and `up` per target is as expected."""
    seen: dict[str, object] = {}
    base = stack.prometheus.url

    def arrived() -> bool:
        data = query(base, "/api/v1/query", query="count(cpx_instance_cpu_usage_ratio)")
        assert isinstance(data, dict)
        seen["instances"] = [float(item["value"][1]) for item in data["result"]]
        data = query(base, "/api/v1/query", query='up{job="cpx"}')
        assert isinstance(data, dict)
        seen["up"] = {
            item["metric"]["instance"]: float(item["value"][1]) for item in data["result"]
        }
        live = sum(
            1
            for ip, instance in stack.fleet.instances.items()
            if instance.status == 200 and expected_up.get(stack.target(shard_of(ip, 2)))
        )
        return seen["up"] == expected_up and seen["instances"] == ([float(live)] if live else [])

    stack.prometheus.poll(arrived, seen)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    fleet = drift_free_fleet()
    with ExitStack() as stack:
        sim = SimulatorServer(fleet, "127.0.0.1", 0)
        sim.start()
        stack.callback(sim.stop)
        shards = [
            stack.enter_context(Exporter(ClientSettings(sim.url), shard=Shard(index, 2)))
            for index in range(2)
        ]
        directory: Path = tmp_path_factory.mktemp("prometheus")
        targets = [urllib.parse.urlsplit(shard.url).netloc for shard in shards]
        prometheus = stack.enter_context(running_prometheus(directory, targets))
        running = Stack(sim, fleet, shards, prometheus, [])
        wait_for_fleet(running, dict.fromkeys(targets, 1.0))
        running.ready.append(time.time())
        yield running


@pytest.mark.slow
@pytest.mark.system
def test_the_fleet_from_prometheus_is_the_fleet_from_cpx(scraped):
    direct = read_snapshot(RunConfig(ClientSettings(scraped.sim.url)))
    read = fetch_fleet(scraped.settings())
    assert read.down == []
    assert read.snapshot == direct
    assert [type(i.cpu) for i in read.snapshot.instances] == [type(i.cpu) for i in direct.instances]
    assert len(direct.instances) == 124


@pytest.mark.system
def test_a_selector_picks_the_fleet(scraped, cli):
    assert fetch_fleet(scraped.settings(selector='{job="cpx"}')).snapshot.instances
    url = scraped.prometheus.url
    result = cli("--prometheus-url", url, "--prometheus-selector", '{job="other"}', "status")
    assert result.exit_code == 3
    assert re.fullmatch(
        rf'cli_devops: error: Prometheus at {url} has no cpx_up{{job="other"}} series in the '
        r"300s before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: it scrapes no exporter that the "
        r"selector matches\n",
        result.stderr,
    ), result.stderr


@pytest.mark.slow
@pytest.mark.system
def test_a_moment_in_the_past_reads_the_fleet_as_it_was(scraped):
    scraped.wait_for_history(3)
    before = fetch_fleet(scraped.settings()).snapshot
    moment = time.time() - 2  # see test_at_reads_the_fleet_as_it_was_then
    ip = "10.0.9.1"
    original = scraped.fleet.instances[ip]
    scraped.fleet.instances[ip] = SimInstance("OddService", 97, 33.3)
    try:

        def changed() -> bool:
            now = fetch_fleet(scraped.settings()).snapshot.instances
            return any(i.ip == ip and i.cpu == 97 for i in now)

        scraped.prometheus.poll(changed, "the changed figure")
        assert fetch_fleet(scraped.settings(), at=moment).snapshot == before
    finally:
        scraped.fleet.instances[ip] = original
    scraped.prometheus.poll(
        lambda: fetch_fleet(scraped.settings()).snapshot == before, "the figure set back"
    )
    scraped.ready.append(time.time())


@pytest.mark.slow
@pytest.mark.system
def test_a_stopped_shard_makes_its_instances_unknown_naming_the_target(tmp_path, cli):
    fleet = drift_free_fleet()
    fleet.instances["10.0.9.5"] = SimInstance("OddService", 1, 1, status=500)
    with ExitStack() as stack:
        sim = SimulatorServer(fleet, "127.0.0.1", 0)
        sim.start()
        stack.callback(sim.stop)
        shards = [
            stack.enter_context(Exporter(ClientSettings(sim.url), shard=Shard(index, 2)))
            for index in range(2)
        ]
        targets = [urllib.parse.urlsplit(shard.url).netloc for shard in shards]
        prometheus = stack.enter_context(running_prometheus(tmp_path, targets))
        running = Stack(sim, fleet, shards, prometheus, [])
        wait_for_fleet(running, dict.fromkeys(targets, 1.0))
        before = fetch_fleet(running.settings()).snapshot
        unreadable = [i for i in before.instances if i.ip == "10.0.9.5"]
        assert unreadable == [
            ("10.0.9.5", None, None, None, "the exporter could not read it from CPX")
        ]

        shards[1].stop()
        wait_for_fleet(running, {targets[0]: 1.0, targets[1]: 0.0})
        read = fetch_fleet(running.settings())
        url = running.prometheus.url
        listed = cli("--prometheus-url", url, "services", "-o", "json")
        strict = cli("--prometheus-url", url, "--strict", "status", "-o", "json")
    reason = f"exporter target {targets[1]} (job cpx) is down (up 0)"
    on_down = [ip for ip in fleet.instances if shard_of(ip, 2) == 1]
    assert read.down == [f"{reason}: {len(on_down)} instances Unknown"]
    by_ip = {i.ip: i for i in read.snapshot.instances}
    assert len(by_ip) == len(fleet.instances)  # the down shard's instances are kept
    for ip in on_down:
        assert by_ip[ip] == (ip, None, None, None, reason)
    for ip in fleet.instances:
        if shard_of(ip, 2) == 0:
            assert by_ip[ip] == next(i for i in before.instances if i.ip == ip)

    assert listed.exit_code == 0
    records = {record["ip"]: record for record in json.loads(listed.stdout)}
    for ip in on_down:
        assert records[ip] == {"ip": ip, "service": None, "status": "Unknown", "cpu": None,
                               "memory": None, "error": reason, "outlier": False}  # fmt: skip
    unread = len(on_down) + (shard_of("10.0.9.5", 2) == 0)
    assert listed.stderr.splitlines() == [
        f"cli_devops: {reason}: {len(on_down)} instances Unknown",
        f"cli_devops: {unread} of {len(fleet.instances)} instances could not be read "
        f"({len(on_down)} × {reason}"
        + (", 1 × the exporter could not read it from CPX)" if unread > len(on_down) else ")"),
    ]
    assert strict.exit_code == 4
    assert strict.stdout == ""
    assert strict.stderr.splitlines()[0] == listed.stderr.splitlines()[0]
    assert strict.stderr.splitlines()[-1] == (
        f"cli_devops: error: {unread} instances could not be read and --strict was given"
    )


@pytest.mark.system
@pytest.mark.parametrize(
    "command",
    [["services"], ["services", "--sort", "cpu"], ["status"], ["status", "--min-healthy", "3"],
     ["unhealthy-services"], ["unhealthy-services", "--min-healthy", "30"]],
)  # fmt: skip
def test_the_commands_answer_from_prometheus_as_from_cpx(scraped, cli, command):
    direct = cli("--cp-url", scraped.sim.url, *command, "-o", "json")
    counter = GatedCpx(Fleet(), hold=lambda path: False)
    with counter:
        read = cli("--cp-url", counter.url, "--prometheus-url", scraped.prometheus.url,
                   *command, "-o", "json")  # fmt: skip
    assert counter.requests == {}
    assert (read.exit_code, read.stdout, read.stderr) == (direct.exit_code, direct.stdout, "")
    assert json.loads(read.stdout)
    table = cli("--prometheus-url", scraped.prometheus.url, *command)
    assert table.stdout == cli("--cp-url", scraped.sim.url, *command).stdout


@pytest.mark.system
def test_the_url_can_come_from_the_environment(scraped, cli, monkeypatch):
    monkeypatch.setenv("CPX_PROMETHEUS_URL", scraped.prometheus.url)
    result = cli("--cp-url", "http://127.0.0.1:9", "status", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == cli("--cp-url", scraped.sim.url, "status", "-o", "json").stdout


@pytest.mark.slow
@pytest.mark.system
def test_track_polls_from_prometheus_as_from_cpx(scraped, cli):
    args = ("track", "OddService", "--count", "3", "--interval", "0.5", "--history", "1")
    direct = cli("--cp-url", scraped.sim.url, *args, "-o", "json")
    read = cli("--prometheus-url", scraped.prometheus.url, *args, "-o", "json")
    assert read.exit_code == direct.exit_code == 0, read.stderr
    polls = [json.loads(line) for line in read.stdout.splitlines()]
    assert len(polls) == 3  # --history 1: no past steps before the polls
    expected = [json.loads(line)["instances"] for line in direct.stdout.splitlines()]
    assert [poll["instances"] for poll in polls] == expected
    logged = cli("--prometheus-url", scraped.prometheus.url, "--debug", *args, "-o", "json")
    cpu_queries = [
        line for line in logged.stderr.splitlines() if "query=cpx_instance_cpu_usage_ratio" in line
    ]
    narrowed = "query=cpx_instance_cpu_usage_ratio%7Bcpx_service%3D%22OddService%22%7D"
    assert [narrowed in line for line in cpu_queries] == [False, True, True]  # after the first


@pytest.mark.system
def test_track_opens_with_the_history_window_filled(scraped, cli):
    scraped.wait_for_history(6)
    result = cli("--prometheus-url", scraped.prometheus.url, "track", "OddService",
                 "--count", "1", "--interval", "1", "--history", "5", "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 5  # four past steps, one a second apart, then the poll
    times = [datetime.fromisoformat(r["time"].replace("Z", "+00:00")) for r in records]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert all(gap == pytest.approx(1, abs=0.01) for gap in gaps[:-1]), gaps
    assert 0 < gaps[-1] < 2, gaps
    expected = [ip for ip, i in scraped.fleet.instances.items() if i.service == "OddService"]
    for record in records:
        assert [i["ip"] for i in record["instances"]] == expected
        assert record["error"] is None
    assert records[0]["instances"][0] == {
        "ip": "10.0.9.1", "service": "OddService", "status": "Healthy", "cpu": 50.5,
        "memory": 33.3, "error": None, "outlier": False,
    }  # fmt: skip


def test_an_unreachable_prometheus_is_exit_3_in_one_line(cli):
    port = free_port()
    result = cli("--prometheus-url", f"http://127.0.0.1:{port}", "--retries", "0", "status")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"cli_devops: error: cannot query Prometheus at http://127.0.0.1:{port}: "
        "connection failed: connection refused\n"
    )


@pytest.mark.system
def test_at_reads_the_fleet_as_it_was_then(scraped, cli):
    url = scraped.prometheus.url
    # Two seconds back: a scrape that reads the change below is stamped at its start, which may
    # be up to a scrape (1 s) before the change itself.
    scraped.wait_for_history(3)
    before = cli("--prometheus-url", url, "services", "-o", "json")
    moment = datetime.now(UTC) - timedelta(seconds=2)
    ip = "10.0.9.2"
    original = scraped.fleet.instances[ip]
    scraped.fleet.instances[ip] = SimInstance("OddService", 1, 2)
    try:
        scraped.prometheus.poll(
            lambda: cli("--prometheus-url", url, "services", "-o", "json").stdout != before.stdout,
            "the changed figures",
        )
        then = moment.isoformat().replace("+00:00", "Z")
        assert cli("--prometheus-url", url, "--at", then, "services", "-o", "json") == before
        seconds = (datetime.now(UTC) - moment).total_seconds()
        relative = cli(
            "--prometheus-url", url, f"--at=-{seconds + 0.05:.3f}s", "services", "-o", "json"
        )
        assert relative == before
        moved = cli("--prometheus-url", url, "--at", "-0s", "services", "-o", "json")
        assert moved.stdout != before.stdout
    finally:
        scraped.fleet.instances[ip] = original
    scraped.prometheus.poll(
        lambda: cli("--prometheus-url", url, "services", "-o", "json") == before,
        "the figures set back",
    )
    scraped.ready.append(time.time())


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--at", "-1m"], "--at needs --prometheus-url"),
     (["--prometheus-url", "127.0.0.1:1", "--demo"], "give --demo or --prometheus-url, not both"),
     (["--prometheus-url", "127.0.0.1:1", "--at", "soon"], "--at: invalid time 'soon'"),
     (["--prometheus-url", "127.0.0.1:1", "--prometheus-selector", "up"],
      "--prometheus-selector: invalid selector 'up'"),
     (["--prometheus-url", "ftp://x"], "--prometheus-url: invalid URL 'ftp://x'")],
)  # fmt: skip
def test_prometheus_options_in_the_wrong_shape_are_usage_errors(cli, args, message):
    result = cli(*args, "status")
    assert result.exit_code == 2
    assert message in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.system
def test_track_live_view_opens_with_full_sparklines(scraped):
    scraped.wait_for_history(7)
    child, transcript = spawn_track(
        "http://127.0.0.1:9",  # CPX: never asked
        "OddService", "--interval", "1", "--history", "6", "--count", "1",
        options=("--prometheus-url", scraped.prometheus.url),
    )  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    output = transcript.getvalue()
    assert child.exitstatus == 0, output[-2000:]
    screen = ANSI.sub("", output)
    # 10.0.9.1 at 50.5% CPU and 33.3% memory: six samples at once, five of them from history
    assert re.search(r"10\.0\.9\.1 +Healthy +50% +▅▅▅▅▅▅ +50 +50 +50 +33% +▃▃▃▃▃▃ ", screen)
    lines = summary_lines(output, "OddService")
    assert re.fullmatch(r"OddService: 1 polls? over \d+s", lines[0]), lines[0]
    rows = lines[3:7]
    assert [row.split()[:3] for row in rows] == [
        ["10.0.9.1", "Healthy", "6"], ["10.0.9.2", "Unhealthy", "6"],
        ["10.0.9.3", "Healthy", "6"], ["10.0.9.4", "Unhealthy", "6"],
    ]  # fmt: skip


@pytest.mark.system
def test_top_opens_with_full_sparklines(scraped):
    from cli_devops.health import Thresholds
    from cli_devops.sources.prometheus import PrometheusSource
    from cli_devops.top.feed import LiveFeed
    from cli_devops.top.source import SourcePolls
    from cli_devops.top.state import FleetState

    scraped.wait_for_history(7)
    state = FleetState("prometheus", interval=1, thresholds=Thresholds(), min_healthy=2,
                       history=6)  # fmt: skip
    frames: list[object] = []
    crashes: list[BaseException] = []
    source = SourcePolls(PrometheusSource(scraped.settings()), lambda: datetime.now(UTC))
    feed = LiveFeed(source, state, frames.append, crashes.append, interval=1,
                    monotonic=time.monotonic)  # fmt: skip
    feed.start()
    try:
        scraped.prometheus.poll(lambda: bool(frames or crashes), "the first frame", limit=30)
    finally:
        feed.stop()
    assert crashes == []
    assert state.track.polls <= 2  # the history before the first poll is not counted as polls
    track = state.track.tracks["10.0.9.1"]
    assert list(track.cpu.recent) == [50.5] * 6
    assert list(track.memory.recent) == [33.3] * 6
    assert len(state.service_cpu["OddService"].recent) == 6
    assert len(state.track.tracks) == len(scraped.fleet.instances)


@pytest.mark.system
def test_a_context_can_name_the_prometheus_to_read(scraped, cli, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        'current-context = "fleet"\n\n'
        f'[contexts.fleet]\ncp-url = "http://127.0.0.1:9"\n'
        f'prometheus-url = "{scraped.prometheus.url}"\nprometheus-selector = \'{{job="cpx"}}\'\n'
    )
    config.chmod(0o600)
    result = cli("--config", str(config), "status", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == cli("--cp-url", scraped.sim.url, "status", "-o", "json").stdout
    config.write_text(config.read_text() + 'at = "-1m"\n')
    refused = cli("--config", str(config), "status")
    assert refused.exit_code == 2
    assert "line 7" in refused.stderr  # --at is about one run: no context sets it
    assert "not a global option; known keys: " in refused.stderr


def await_screen(child: pexpect.spawn, transcript: Any, pattern: str, since: int) -> int:
    """Until the terminal output after `since` (escape codes dropped) matches `pattern`; the
    offset of the output read so far, for the next wait."""
    from .test_top_terminal import ANSI

    deadline = time.monotonic() + 30
    while not re.search(pattern, ANSI.sub("", transcript.getvalue()[since:])):
        assert time.monotonic() < deadline, ANSI.sub("", transcript.getvalue())[:6000]
        child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.2)
    return len(transcript.getvalue())


@pytest.mark.slow
@pytest.mark.system
def test_top_at_opens_the_fleet_as_it_was_and_travels_through_prometheus(scraped):
    from .test_top_terminal import ANSI, spawn_top

    scraped.wait_for_history(3)
    moment = datetime.now(UTC) - timedelta(seconds=2)  # see test_at_reads_the_fleet...
    ip = "10.0.9.1"
    original = scraped.fleet.instances[ip]
    scraped.fleet.instances[ip] = SimInstance("OddService", 97, 33.3)
    then = moment.isoformat().replace("+00:00", "Z")
    try:
        scraped.prometheus.poll(
            lambda: any(i.ip == ip and i.cpu == 97
                        for i in fetch_fleet(scraped.settings()).snapshot.instances),
            "the changed figure",
        )  # fmt: skip
        child, transcript = spawn_top(
            "top", "--prometheus-url", scraped.prometheus.url, "--at", then, "--interval", "1"
        )
        try:
            old, new = r"OddService\s+2/4\s+2\s+0\s+0\s+16%", r"OddService.+27%"
            seen = await_screen(child, transcript, "HISTORIC", 0)
            seen = await_screen(child, transcript, old, 0)  # 50.5, 0.1, 12.3, 0: avg 16
            child.send("L")
            seen = await_screen(child, transcript, new, seen)  # 97 instead of 50.5: avg 27
            child.send("b")
            child.expect("Enter goes")
            child.send(then + "\r")
            seen = await_screen(child, transcript, old, seen)
            child.send("t")  # one step (--interval) on
            seen = await_screen(child, transcript, "HISTORIC", seen)
            child.send("L")
            seen = await_screen(child, transcript, new, seen)
            child.send("q")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        assert child.exitstatus == 0, transcript.getvalue()[-2000:]
        screen = ANSI.sub("", transcript.getvalue())
        assert "Traceback" not in screen
    finally:
        scraped.fleet.instances[ip] = original
    scraped.prometheus.poll(
        lambda: (
            not any(
                i.ip == ip and i.cpu == 97
                for i in fetch_fleet(scraped.settings()).snapshot.instances
            )
        ),
        "the figure set back",
    )
    scraped.ready.append(time.time())
