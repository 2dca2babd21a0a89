"""Reliability under attack: hostile figures, hung and rate-limiting fleets, deadlines, Ctrl+C at
any moment, credentials in URLs and redirects, closed pipes, signals in a terminal.

Every case runs the real CLI against a real loopback stand-in (`tests/hostile.py`); wall-clock
bounds are loose (several times the expected figure): a hang or a collapse is the failure.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_devops.client import ClientSettings, normalize_base_url
from cli_devops.client.concurrency import AdaptiveLimiter, FixedLimiter
from cli_devops.errors import SettingError
from cli_devops.exporter import Exporter
from cli_devops.model import parse_instance

from .conftest import hermetic_environ, run_process
from .hostile import HostileCpx, Reply, hang, healthy, ips, too_many
from .scraping import get, samples

ROOT = Path(__file__).resolve().parent.parent

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 10**4000, 2**63, 100, 0, -1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["61%", "1" * 400 + "%", "1e999", "NaN", "100.0000001", " 5 % "]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(json_values, json_values, json_values)
def test_parse_instance_decides_any_json_values_per_instance(cpu, memory, service):
    instance = parse_instance("10.0.0.1", {"cpu": cpu, "memory": memory, "service": service})
    assert instance.ip == "10.0.0.1"
    if instance.error is None:
        assert instance.cpu is not None and 0 <= instance.cpu <= 100
        assert instance.memory is not None and 0 <= instance.memory <= 100
        assert isinstance(instance.service, str)
    else:
        assert instance.cpu is None and instance.memory is None


def _body(value: object) -> bytes:
    """JSON text of a value; json.dumps writes overflowing floats as Infinity, which Python's
    parser reads back as inf (what a hostile API can send)."""
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def figures_api() -> Iterator[HostileCpx]:
    with HostileCpx(["10.0.0.1", "10.0.0.2"], healthy) as api:
        yield api


@pytest.fixture(scope="module")
def figures_exporter(figures_api: HostileCpx) -> Iterator[Exporter]:
    with Exporter(ClientSettings(figures_api.url)) as exporter:
        yield exporter


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.fixed_dictionaries({"cpu": json_values, "memory": json_values, "service": json_values}))
def test_any_figure_through_every_command_and_the_exporter_is_a_per_instance_result(
    cli, figures_api, figures_exporter, answer
):
    figures_api.routes["/10.0.0.1"] = Reply(body=_body(answer))
    url = figures_api.url
    listed = cli("--cp-url", url, "services", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    records = {record["ip"]: record for record in json.loads(listed.stdout)}
    assert records["10.0.0.2"]["status"] == "Healthy"
    hostile = records["10.0.0.1"]
    assert (hostile["error"] is None) == (hostile["status"] != "Unknown")
    for command in ("status", "unhealthy-services"):
        done = cli("--cp-url", url, command, "-o", "json")
        assert done.exit_code in (0, 1), done.stderr
        json.loads(done.stdout)
    tracked = cli("--cp-url", url, "track", "S", "--count", "1", "-o", "json")
    assert tracked.exit_code == 0, tracked.stderr
    assert json.loads(tracked.stdout)["service"] == "S"
    scraped = get(figures_exporter.url)
    assert scraped.status == 200
    found = samples(scraped.text)
    assert found["cpx_up", ()] == 1
    success = found["cpx_instance_scrape_success", (("ip", "10.0.0.1"),)]
    assert success == (0 if hostile["error"] else 1)


def test_a_400_digit_cpu_is_unknown_and_the_rest_of_the_fleet_is_shown(cli, figures_api):
    figures_api.routes["/10.0.0.1"] = Reply(
        body=b'{"cpu": 1' + b"0" * 400 + b', "memory": 1, "service": "S"}'
    )
    done = cli("--cp-url", figures_api.url, "services")
    assert done.exit_code == 0
    assert "cpu is outside 0-100%" in done.stderr
    assert "10.0.0.2" in done.stdout


def timed(*args: str, timeout: float = 120) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cli_devops", *args],
        capture_output=True, text=True, timeout=timeout, env=hermetic_environ(), check=False,
    )  # fmt: skip
    return time.monotonic() - started, done


@pytest.mark.slow
def test_a_hung_fleet_ends_in_attempts_times_timeout_not_n_times_timeout():
    # 150 hung instances, 1 s timeout, 1 retry: about 2 s of attempts (plus launch and
    # start-up), where a limit collapsing to 1 took N x timeout (150 s).
    with HostileCpx(ips(150), hang) as api:
        seconds, done = timed("--cp-url", api.url, "--timeout", "1", "--retries", "1",
                              "services", "-o", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert len(records) == 150
    assert {record["error"] for record in records} == {"timed out after 1s"}
    assert seconds < 20


@pytest.mark.slow
def test_a_few_hung_instances_do_not_collapse_the_limit_for_the_rest():
    hung = {f"/{ip}" for ip in ips(400)[::10]}  # 40 of 400 hang

    def reply(path: str) -> Reply:
        return Reply("hang") if path in hung else Reply(body=healthy(path).body, delay=0.02)

    with HostileCpx(ips(400), reply) as api:
        seconds, done = timed("--cp-url", api.url, "--timeout", "2", "--retries", "0",
                              "--debug", "services", "-o", "json")  # fmt: skip
    assert done.returncode == 0
    records = json.loads(done.stdout)
    assert sum(record["error"] is None for record in records) == 360
    final_limit = int(done.stderr.split("final ", 1)[1].split(",", 1)[0])
    assert final_limit >= 8, done.stderr[-500:]
    assert seconds < 20


@pytest.mark.slow
def test_a_rate_limited_fleet_backoff_sleeps_hold_no_slot():
    # Every instance answers 429 with Retry-After: 2. Even at one request in flight, the sleeps
    # overlap: about three rounds of 2 s, where sleeping in the slot took retries x 2 s each.
    with HostileCpx(ips(150), too_many(2)) as api:
        seconds, done = timed("--cp-url", api.url, "--concurrency", "1", "services", "-o", "json")
        requests = api.request_count()
    assert done.returncode == 0, done.stderr
    assert {record["error"] for record in json.loads(done.stdout)} == {"HTTP 429"}
    assert requests > 151  # retries were made, within the read's retry budget
    assert seconds < 30


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hang", "trickle-servers", "429-long"])
def test_deadline_bounds_the_wall_time_whatever_the_api_does(mode):
    servers_reply = None
    instance = hang
    if mode == "trickle-servers":
        servers_reply = Reply("trickle", body=json.dumps(ips(100)).encode(), delay=0.2)
    elif mode == "429-long":
        instance = too_many(9)
    with HostileCpx(ips(2000), instance, servers_reply) as api:
        seconds, done = timed("--cp-url", api.url, "--deadline", "2", "status", "-o", "json")
    assert done.returncode == (3 if mode == "trickle-servers" else 0), done.stderr
    assert seconds < 2 + 10


@pytest.mark.slow
def test_deadline_bounds_a_million_entry_listing():
    with HostileCpx(ips(1_000_000), hang) as api:
        seconds, done = timed("--cp-url", api.url, "--deadline", "2", "status", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert "1000000 of 1000000 instances could not be read" in done.stderr
    assert seconds < 2 + 15  # the listing's own parse, start-up and output come on top


def test_a_cancelled_waiter_already_woken_is_not_removed_twice():
    async def scenario() -> int:
        limiter = FixedLimiter(1)
        held = await limiter.acquire()
        waiting = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        waiting.cancel()  # Ctrl+C: its future is cancelled ...
        limiter.release(held)  # ... and the wake-up drops it before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return limiter.in_flight

    assert asyncio.run(scenario()) == 0


def test_timeouts_and_deadline_cuts_do_not_lower_the_adaptive_limit():
    async def scenario() -> int:
        limiter = AdaptiveLimiter()
        for _ in range(40):
            tickets = [await limiter.acquire() for _ in range(limiter.limit)]
            for ticket in tickets:
                limiter.release(ticket, cut=True)
        return limiter.limit

    assert asyncio.run(scenario()) >= 8


def test_stuck_requests_give_their_slot_back():
    async def scenario() -> tuple[int, int]:
        limiter = AdaptiveLimiter(initial=2)
        stuck = [await limiter.acquire() for _ in range(2)]
        next_one = await asyncio.wait_for(limiter.acquire(), 5)  # granted once they park
        parked = limiter.parked
        for ticket in [*stuck, next_one]:
            limiter.release(ticket, cut=True)
        return parked, limiter.in_flight

    assert asyncio.run(scenario()) == (2, 0)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli_devops", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
    )  # fmt: skip


PHASES = {
    "listing": lambda api: api.requests["/servers"] >= 1,
    "fan-out": lambda api: api.request_count() >= 200,
}
"""The moments of a read a Ctrl+C can land in: the list of instances still arriving (it
trickles in), and instances being read (each answers after 5 ms, 3,000 of them)."""


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize(
    ("command", "code"),
    [(["services"], 130), (["track", "S", "-o", "json"], 130)],
    ids=["services", "track"],
)
def test_ctrl_c_in_each_phase_of_a_large_read_exits_130(command, code, phase):
    def slow_reply(path: str) -> Reply:
        return Reply(body=healthy(path).body, delay=0.005)

    listing = json.dumps(ips(3000)).encode()
    trickle = Reply("trickle", body=listing, delay=0.0005) if phase == "listing" else None
    with HostileCpx(ips(3000), slow_reply, servers_reply=trickle) as api:
        process = spawn("--cp-url", api.url, *command)
        deadline = time.monotonic() + 60
        while not PHASES[phase](api) and time.monotonic() < deadline:
            time.sleep(0.002)
        assert PHASES[phase](api), f"the read never reached its {phase}"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == code, err[-300:]
    assert "Traceback" not in err and "unexpected error" not in err, err


def closed_stdout_run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has already gone (what `| head -1` becomes)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "cli_devops", *args],
            stdout=write_end, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
            timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["services"], 0),
        (["services", "-o", "json"], 0),
        (["status", "-o", "csv"], 0),
        (["unhealthy-services", "--min-healthy", "30"], 1),
        (["unhealthy-services", "-o", "json"], 0),
        (["track", "S", "-o", "json"], 0),
        (["track", "S", "--interval", "0.1"], 0),
    ],
)
def test_a_reader_that_goes_away_leaves_the_exit_code_of_the_result(args, code):
    def mixed(path: str) -> Reply:  # half the instances over the threshold: S is flagged
        hot = int(path.rsplit(".", 1)[1]) % 2
        return Reply(body=_body({"cpu": 95 if hot else 5, "memory": 5, "service": "S"}))

    with HostileCpx(ips(50), mixed) as api:
        done = closed_stdout_run("--cp-url", api.url, *args)
    assert done.returncode == code, done.stderr
    assert done.stderr == "", done.stderr


def test_redirect_with_credentials_while_a_token_is_set_is_followed_without_them(cli):
    with HostileCpx(ips(3)) as api:
        port = api.url.rsplit(":", 1)[1]
        api.routes["/servers"] = Reply(
            status=302, body=b"", headers=(("Location", f"http://user:pw@127.0.0.1:{port}/list"),)
        )
        api.routes["/list"] = Reply(body=json.dumps(ips(3)).encode())
        done = cli("--cp-url", api.url, "--token", "t0k3n", "--debug", "services", "-o", "json")
    assert done.exit_code == 0, done.stderr
    assert len(json.loads(done.stdout)) == 3
    assert done.stderr.count("a redirect carried credentials in its URL: they are not used") == 1
    assert "pw" not in done.stderr.replace("pw@", "")  # only the Location line could show it


@pytest.mark.parametrize(
    "url", ["http://user:s3cret@127.0.0.1:8080", "http://user:s3cret@127.0.0.1:99999", "u:s3cret@h"]
)
def test_credentials_in_the_url_are_refused_and_never_echoed(cli, url):
    done = cli("--cp-url", url, "services")
    assert done.exit_code == 2
    assert done.stderr == (
        "cli_devops: error: --cp-url: invalid URL: credentials (user:password@) are not accepted "
        "in the URL; use a token\n"
    )


def test_port_0_and_control_characters_are_usage_errors_even_with_debug(cli):
    zero = cli("--cp-url", "http://127.0.0.1:0", "services")
    assert zero.exit_code == 2
    assert zero.stderr == (
        "cli_devops: error: --cp-url: invalid URL 'http://127.0.0.1:0': port 0 is outside 1-65535\n"
    )
    evil = cli("--debug", "--cp-url", "http://127.0.0.1:1/\x1b[2J\x07", "services")
    assert evil.exit_code == 2
    assert "\x1b" not in evil.stderr and "\x07" not in evil.stderr
    assert evil.stderr.endswith(
        "cli_devops: error: --cp-url: invalid URL: it has control characters\n"
    )


def test_library_setting_errors_name_no_flag():
    with pytest.raises(SettingError) as raised:
        normalize_base_url("http://h:0")
    assert "--" not in str(raised.value)
    assert raised.value.setting == "url"


def test_ipv6_zone_ids_are_accepted():
    assert normalize_base_url("http://[fe80::1%25eth0]:8080") == "http://[fe80::1%25eth0]:8080"
    assert normalize_base_url("[fe80::1%25eth0]:8080/") == "http://[fe80::1%25eth0]:8080"
    with pytest.raises(SettingError):
        normalize_base_url("http://[fe80::1%25]:8080")


def link_local() -> tuple[str, str] | None:
    """A link-local IPv6 address of this machine and its interface, if any (Linux)."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hexaddr, _index, _plen, scope, _flags, name = line.split()
        if scope == "20":  # link scope
            groups = [hexaddr[i : i + 4] for i in range(0, 32, 4)]
            return ":".join(groups), name
    return None


@pytest.mark.skipif(link_local() is None, reason="this machine has no link-local IPv6 address")
def test_a_zone_id_url_reaches_a_link_local_server():
    from cli_devops.simulator import Fleet, SimulatorServer

    found = link_local()
    assert found is not None
    address, interface = found
    with SimulatorServer(Fleet.generate(3, seed=1), "::", 0) as server:
        url = f"http://[{address}%25{interface}]:{server.port}"
        done = run_process("--cp-url", url, "services", "-o", "json")
    assert done.exit_code == 0, done.stderr
    assert len(json.loads(done.stdout)) == 3


@pytest.mark.system
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_track_in_a_terminal_gives_the_terminal_back_on_sigterm_and_sighup(sig):
    with HostileCpx(ips(3)) as api:
        env = hermetic_environ(TERM="xterm-256color", PYTHONIOENCODING="utf-8")
        child = pexpect.spawn(
            sys.executable, ["-m", "cli_devops", "--cp-url", api.url, "track", "S",
                             "--interval", "0.2"],
            env=env, dimensions=(30, 120), encoding="utf-8", timeout=30,
        )  # fmt: skip
        transcript = io.StringIO()
        child.logfile_read = transcript
        child.expect("poll 2 ")
        seen = len(transcript.getvalue())
        child.kill(sig)
        child.expect(pexpect.EOF)
        child.close()
        after = transcript.getvalue()[seen:]
    assert child.exitstatus == 128 + sig, (child.exitstatus, child.signalstatus)
    assert "\x1b[?1049l" in after  # alternate screen off
    assert "\x1b[?25h" in after  # cursor shown
    assert "Traceback" not in after
