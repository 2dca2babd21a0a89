"""The chaos suite: a failing, slow or hostile CPX API never crashes the tool, hangs it, floods
it or reaches the terminal. Every scenario runs the real CLI against the simulator on loopback,
with faults drawn from a seed, so each test knows exactly which instances must come back."""

from __future__ import annotations

import io
import json
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_devops.app import App, report_unread
from cli_devops.client import (
    BACKOFF_CAP,
    RETRY_BUDGET_MIN,
    RETRY_BUDGET_RATIO,
    ClientSettings,
    parse_retry_after,
)
from cli_devops.environment import Environment
from cli_devops.errors import PayloadError
from cli_devops.health import Thresholds, summarize_services
from cli_devops.model import Instance, decode_json, parse_instance
from cli_devops.render import (
    flagged_report,
    instances_report,
    status_report,
    write_report,
)
from cli_devops.simulator import (
    CHAOS,
    CHAOS_JUNK,
    CHAOS_RATE,
    CHAOS_VALUES,
    EVIL_SERVICE,
    Fault,
    Faults,
    Fleet,
    SimulatorServer,
)

from .conftest import hermetic_environ, run_process

FAILURE_DOC = Path(__file__).resolve().parent.parent / "docs" / "failure-behaviour.md"
TOKEN = "s3cr3t-T0ken.abc_XYZ"

CHAOS_REASONS: dict[str, str | None] = {
    "not-json": "answer is not valid JSON",
    "not-utf8": "answer is not valid JSON",
    "nested": "answer is nested too deeply",
    "many-arrays": "answer has too many arrays or objects",
    "gzip-bomb": "answer is compressed, which was not asked for",
    "not-object": "answer is not a JSON object",
    "no-service": "service is missing",
    "service-not-string": "service is not a string",
    "service-too-long": "service is longer than 256 characters",
    "service-invisible": "service is empty or has no printable characters",
    "cpu-not-percent": "cpu is not a percentage",
    "memory-out-of-range": "memory is outside 0-100%",
    "cpu-negative": "cpu is outside 0-100%",
    "memory-nan": "memory is not a number",
    "oversize": "response too large",
    "flood": "response too large",
    "bad-http": "invalid HTTP answer",
    "evil-reason": "HTTP 404",
    "redirect-loop": "more than 3 redirects",
    "redirect-file": "redirected to an invalid URL",
    "evil-service": None,
}
"""What the user must see for each chaos answer (None: it is valid, only its name is hostile)."""


def fleet_of(size: int, seed: int = 1) -> Fleet:
    fleet = Fleet.generate(size, seed=seed)
    fleet.drift = False
    return fleet


def paths_of(fleet: Fleet) -> list[str]:
    return ["/servers", *(f"/{ip}" for ip in fleet.instances)]


def first_seed(works: Callable[[int], bool]) -> int:
    """The first seed under which a scenario shows what the test is about (deterministic)."""
    return next(seed for seed in range(10_000) if works(seed))


def fault_reason(fault: Fault, timeout: float) -> str:
    if fault.kind == "drop":
        return "server closed the connection"
    if fault.kind == "stall":
        return f"timed out after {timeout:g}s"
    return f"HTTP {fault.status}"


def predict(plan: Faults, path: str, retries: int, timeout: float = 5.0) -> tuple[int, str | None]:
    """(requests the client makes for `path`, the reason it is lost or None) under `plan`."""
    reason = None
    for attempt in range(1, retries + 2):
        fault = plan.transient(path, attempt)
        if fault is None or (fault.kind == "stall" and fault.delay < timeout):
            return attempt, None
        reason = fault_reason(fault, timeout)
    return retries + 1, reason


def records_of(stdout: str) -> dict[str, dict[str, object]]:
    return {record["ip"]: record for record in json.loads(stdout)}


def assert_true_values(record: dict[str, object], fleet: Fleet) -> None:
    """The record shows exactly what the fleet serves for its IP (fleets here do not drift)."""
    truth = fleet.instances[str(record["ip"])]
    status = "Unhealthy" if truth.cpu > 90 or truth.memory > 90 else "Healthy"
    assert (record["service"], record["cpu"], record["memory"], record["status"]) == (
        truth.service,
        truth.cpu,
        truth.memory,
        status,
    )
    assert record["error"] is None


def terminal_clean(text: str) -> bool:
    return all(char.isprintable() or char == "\n" for char in text)


def requests_made(server: SimulatorServer) -> int:
    return sum(server.request_paths.values())


def retry_budget(requests: int) -> int:
    """Largest number of retries one read of the fleet may make (see client.py)."""
    return int(RETRY_BUDGET_MIN + RETRY_BUDGET_RATIO * requests)


@pytest.fixture
def served() -> Iterator[Callable[..., SimulatorServer]]:
    """Start simulators that are stopped after the test: served(fleet, **options)."""
    servers: list[SimulatorServer] = []

    def start(fleet: Fleet, **options: object) -> SimulatorServer:
        server = SimulatorServer(fleet, **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# Retries


def test_flaky_api_failing_10_percent_gives_complete_correct_data_with_defaults(cli, served):
    fleet = fleet_of(150)
    paths = paths_of(fleet)

    def recoverable(seed: int) -> bool:
        plan = Faults(fail_rate=0.1, seed=seed)
        return all(predict(plan, path, 3)[1] is None for path in paths)

    plan = Faults(fail_rate=0.1, seed=first_seed(recoverable))
    expected_requests = sum(predict(plan, path, 3)[0] for path in paths)
    assert expected_requests - len(paths) <= RETRY_BUDGET_RATIO * len(paths)  # the budget suffices
    server = served(fleet, faults=plan)
    result = cli("--cp-url", server.url, "services", "-o", "json")
    assert result.exit_code == 0
    assert result.stderr == ""
    records = records_of(result.stdout)
    assert sorted(records) == sorted(fleet.instances)
    for record in records.values():
        assert_true_values(record, fleet)
    assert requests_made(server) == expected_requests
    assert requests_made(server) <= len(paths) + retry_budget(len(paths))


def test_without_retries_exactly_the_failed_instances_are_unknown(cli, served):
    fleet = fleet_of(30)

    def shows_both_faults(seed: int) -> bool:
        plan = Faults(fail_rate=0.3, seed=seed)
        kinds = {getattr(plan.transient(path, 1), "kind", None) for path in paths_of(fleet)[1:]}
        return plan.transient("/servers", 1) is None and {"answer", "drop"} <= kinds

    plan = Faults(fail_rate=0.3, seed=first_seed(shows_both_faults))
    lost = {
        ip: reason
        for ip in fleet.instances
        for _, reason in [predict(plan, f"/{ip}", 0)]
        if reason is not None
    }
    server = served(fleet, faults=plan)
    result = cli("--cp-url", server.url, "--retries", "0", "services", "-o", "json")
    assert result.exit_code == 0
    records = records_of(result.stdout)
    assert len(records) == 30
    assert {ip: r["error"] for ip, r in records.items() if r["error"] is not None} == lost
    for ip, record in records.items():
        if ip in lost:
            assert (record["status"], record["cpu"], record["memory"]) == ("Unknown", None, None)
        else:
            assert_true_values(record, fleet)
    assert requests_made(server) == 31
    summary = f"cli_devops: {len(lost)} of 30 instances could not be read ("
    assert result.stderr.startswith(summary)
    for reason in set(lost.values()):
        assert f"{list(lost.values()).count(reason)} × {reason}" in result.stderr

    again = served(fleet, faults=plan)  # a fresh server: the same requests fail again
    strict = cli("--cp-url", again.url, "--retries", "0", "--strict", "services", "-o", "json")
    assert strict.exit_code == 4
    assert strict.stdout == ""
    assert strict.stderr.splitlines()[-1] == (
        f"cli_devops: error: {len(lost)} instances could not be read and --strict was given"
    )


def test_retries_recover_exactly_the_instances_with_a_good_attempt_left(cli, served):
    fleet = fleet_of(12)
    paths = paths_of(fleet)

    def mixed(seed: int) -> bool:
        plan = Faults(fail_rate=0.5, seed=seed)
        outcomes = [predict(plan, path, 1) for path in paths]
        retried = sum(requests - 1 for requests, _ in outcomes)
        recovered = any(requests == 2 and reason is None for requests, reason in outcomes)
        lost = any(reason is not None for _, reason in outcomes[1:])
        return outcomes[0][1] is None and recovered and lost and retried <= RETRY_BUDGET_MIN

    plan = Faults(fail_rate=0.5, seed=first_seed(mixed))
    server = served(fleet, faults=plan)
    result = cli("--cp-url", server.url, "--retries", "1", "services", "-o", "json")
    assert result.exit_code == 0
    records = records_of(result.stdout)
    for ip, record in records.items():
        requests, reason = predict(plan, f"/{ip}", 1)
        assert server.request_paths[f"/{ip}"] == requests
        if reason is None:
            assert_true_values(record, fleet)
        else:
            assert (record["status"], record["error"]) == ("Unknown", reason)


RETRIED = [
    (Fault.answer(503), "HTTP 503"),
    (Fault.answer(500), "HTTP 500"),
    (Fault.answer(429), "HTTP 429"),
    (Fault.drop(), "server closed the connection"),
    (Fault.cut(), "truncated answer"),
]


@pytest.mark.parametrize(("fault", "reason"), RETRIED, ids=[r for _, r in RETRIED])
def test_transient_failures_are_retried(cli, served, fault, reason):
    """10.0.0.1 always fails, 10.0.0.2 fails once: the first is tried 1 + retries times and is
    Unknown, the second comes back on its second attempt, the others are asked once."""
    fleet = fleet_of(6)
    always, once = "/10.0.0.1", "/10.0.0.2"

    def plan(path: str, attempt: int) -> Fault | None:
        return fault if path == always or (path == once and attempt == 1) else None

    server = served(fleet, faults=plan)
    result = cli("--cp-url", server.url, "--retries", "2", "services", "-o", "json")
    assert result.exit_code == 0
    records = records_of(result.stdout)
    assert (records["10.0.0.1"]["status"], records["10.0.0.1"]["error"]) == ("Unknown", reason)
    assert_true_values(records["10.0.0.2"], fleet)
    assert server.request_paths[always] == 3
    assert server.request_paths[once] == 2
    assert requests_made(server) == 1 + 3 + 2 + 4
    assert result.stderr == f"cli_devops: 1 of 6 instances could not be read (1 × {reason})\n"


NOT_RETRIED = [
    (Fault.answer(404), "HTTP 404"),
    (Fault.answer(400), "HTTP 400"),
    (Fault.answer(403), "HTTP 403"),
    (Fault.raw(b"HTTP/1.1 2OO OK\r\n\r\n"), "invalid HTTP answer"),
    (Fault.answer(200, b"{" * 10), "answer is not valid JSON"),
    (Fault.answer(200, b" " * (1024 * 1024 + 1)), "response too large"),
    (Fault.answer(503, headers=(("Retry-After", "3600"),)), "HTTP 503, asked to retry after 3600s"),
]


@pytest.mark.parametrize(("fault", "reason"), NOT_RETRIED, ids=[r for _, r in NOT_RETRIED])
def test_failures_another_attempt_cannot_cure_are_not_retried(cli, served, fault, reason):
    fleet = fleet_of(3)
    server = served(fleet, faults=lambda path, _: fault if path == "/10.0.0.1" else None)
    result = cli("--cp-url", server.url, "services", "-o", "json")
    assert result.exit_code == 0
    assert records_of(result.stdout)["10.0.0.1"]["error"] == reason
    assert server.request_paths["/10.0.0.1"] == 1


def test_backoff_waits_grow_exponentially_with_jitter(cli, served):
    server = served(fleet_of(1), faults=lambda p, _: Fault.answer(503) if p != "/servers" else None)
    started = time.monotonic()
    result = cli("--debug", "--cp-url", server.url, "--retries", "3", "services")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0
    waits = [
        float(w) for w in re.findall(r"/10\.0\.0\.1: retry \d of 3 in ([0-9.]+)s", result.stderr)
    ]
    assert len(waits) == 3
    for wait, (low, high) in zip(waits, [(0.1, 0.2), (0.2, 0.4), (0.4, 0.8)]):
        assert low <= wait <= high
    assert elapsed >= sum(waits) - 0.015  # the log rounds each wait to 10 ms


def test_retry_after_is_honoured(cli, served):
    fleet = fleet_of(3)

    def plan(path: str, attempt: int) -> Fault | None:
        if path != "/servers" and attempt == 1:
            return Fault.answer(429, headers=(("Retry-After", "1"),))
        return None

    server = served(fleet, faults=plan)
    started = time.monotonic()
    result = cli("--cp-url", server.url, "services", "-o", "json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0
    for record in records_of(result.stdout).values():
        assert_true_values(record, fleet)
    assert all(server.request_paths[f"/{ip}"] == 2 for ip in fleet.instances)
    assert elapsed >= 1.0


def test_retries_are_capped_per_run_when_everything_fails(cli, served):
    fleet = fleet_of(50)
    server = served(fleet, faults=lambda path, _: None if path == "/servers" else Fault.answer(503))
    result = cli("--cp-url", server.url, "--retries", "3", "services", "-o", "json")
    assert result.exit_code == 0
    assert all(r["error"] == "HTTP 503" for r in records_of(result.stdout).values())
    assert result.stderr == "cli_devops: 50 of 50 instances could not be read (50 × HTTP 503)\n"
    first_attempts = 51
    assert first_attempts + RETRY_BUDGET_MIN <= requests_made(server)
    assert requests_made(server) <= first_attempts + retry_budget(first_attempts)
    assert requests_made(server) < first_attempts + 50 * 3  # what unbudgeted retries would do


def test_exporter_gets_a_fresh_retry_budget_and_deadline_every_scrape(served):
    from cli_devops.exporter import Exporter

    from .scraping import get, samples

    fleet = fleet_of(10)
    failing = served(fleet, faults=lambda p, _: None if p == "/servers" else Fault.answer(503))
    with Exporter(ClientSettings(failing.url, retries=3)) as exporter:
        for scrape in range(2):
            before = requests_made(failing)
            assert samples(get(exporter.url).text)["cpx_up", ()] == 1
            made = requests_made(failing) - before
            assert 11 + RETRY_BUDGET_MIN <= made <= 11 + retry_budget(11), scrape
    healthy = served(fleet)
    with Exporter(ClientSettings(healthy.url, deadline=0.3)) as exporter:
        for scrape in range(2):
            found = samples(get(exporter.url).text)
            assert found["cpx_up", ()] == 1, scrape  # the deadline counts from each scrape
            assert found["cpx_instance_scrape_success", (("ip", "10.0.0.1"),)] == 1
            time.sleep(0.4 if scrape == 0 else 0)


def test_servers_failing_on_every_attempt_is_exit_3_after_the_retries(cli, served):
    server = served(fleet_of(3), faults=lambda path, _: Fault.drop())
    result = cli("--cp-url", server.url, "--retries", "2", "services")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"cli_devops: error: cannot read the CPX API at {server.url}/servers: server closed the "
        "connection (after 3 attempts). Check --cp-url (or CPX_URL), or try --demo to use the "
        "bundled simulator.\n"
    )
    assert server.request_paths["/servers"] == 3


# Time bounds


def test_one_hung_instance_holds_the_run_at_most_its_attempts(cli, served):
    fleet = fleet_of(8)
    timeout, retries = 0.3, 1
    server = served(fleet, faults=lambda p, _: Fault.stall(60) if p == "/10.0.0.3" else None)
    started = time.monotonic()
    result = cli("--cp-url", server.url, "--timeout", str(timeout), "--retries", str(retries),
                 "services", "-o", "json")  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.exit_code == 0
    records = records_of(result.stdout)
    assert records["10.0.0.3"]["error"] == "timed out after 0.3s"
    for ip, record in records.items():
        if ip != "10.0.0.3":
            assert_true_values(record, fleet)
    assert server.request_paths["/10.0.0.3"] == retries + 1
    assert elapsed >= (retries + 1) * timeout
    assert elapsed < (retries + 1) * timeout + retries * BACKOFF_CAP + 10  # generous slack


def test_slow_rate_stalls_become_timeouts_exactly_where_seeded(cli, served):
    fleet = fleet_of(8)
    timeout, retries = 0.3, 1

    def mixed(seed: int) -> bool:
        plan = Faults(slow_rate=0.5, slow_ms=60_000, seed=seed)
        outcomes = [predict(plan, path, retries, timeout) for path in paths_of(fleet)]
        return (
            outcomes[0] == (1, None)
            and any(reason for _, reason in outcomes)
            and any(requests == 2 and not reason for requests, reason in outcomes)
        )

    plan = Faults(slow_rate=0.5, slow_ms=60_000, seed=first_seed(mixed))
    server = served(fleet, faults=plan)
    started = time.monotonic()
    result = cli("--cp-url", server.url, "--timeout", str(timeout), "--retries", str(retries),
                 "services", "-o", "json")  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.exit_code == 0
    for ip, record in records_of(result.stdout).items():
        requests, reason = predict(plan, f"/{ip}", retries, timeout)
        assert server.request_paths[f"/{ip}"] == requests
        if reason is None:
            assert_true_values(record, fleet)
        else:
            assert record["error"] == reason == "timed out after 0.3s"
    attempts = requests_made(server)
    assert elapsed >= timeout
    assert elapsed < attempts * timeout + attempts * BACKOFF_CAP + 10  # generous slack


def test_latency_beyond_the_timeout_is_a_timeout_and_within_it_is_fine(cli, served):
    fleet = fleet_of(4)
    server = served(fleet, latency_ms=300)
    slow = cli("--cp-url", server.url, "--timeout", "0.1", "--retries", "1", "services")
    assert slow.exit_code == 3
    assert f"{server.url}/servers: timed out after 0.1s (after 2 attempts)." in slow.stderr
    assert server.request_paths["/servers"] == 2
    started = time.monotonic()
    fine = cli("--cp-url", server.url, "--timeout", "2", "services", "-o", "json")
    assert time.monotonic() - started >= 0.6  # /servers, then the instances: two round trips
    assert fine.exit_code == 0
    for record in records_of(fine.stdout).values():
        assert_true_values(record, fleet)


def test_deadline_ends_the_run_with_what_was_read(cli, served):
    fleet = fleet_of(40)
    server = served(fleet, faults=lambda path, _: None if path == "/servers" else Fault.stall(60))
    started = time.monotonic()
    result = cli("--cp-url", server.url, "--deadline", "1", "--concurrency", "4",
                 "services", "-o", "json")  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.exit_code == 0
    records = records_of(result.stdout)
    assert len(records) == 40
    assert {r["error"] for r in records.values()} == {"deadline of 1s reached"}
    assert result.stderr == (
        "cli_devops: 40 of 40 instances could not be read (40 × deadline of 1s reached)\n"
    )
    assert requests_made(server) - 1 < 40  # nothing is sent once the deadline has passed
    assert 1.0 <= elapsed < 1.0 + 10  # generous slack

    strict = cli("--cp-url", server.url, "--deadline", "0.5", "--strict", "services")
    assert strict.exit_code == 4


@pytest.mark.slow
def test_deadline_applies_to_each_track_poll(cli, served):
    fleet = fleet_of(6)
    service = fleet.instances["10.0.0.1"].service
    server = served(fleet, faults=lambda path, _: Fault.stall(60) if path == "/10.0.0.6" else None)
    result = cli("--cp-url", server.url, "--deadline", "1", "track", service, "--count", "2",
                 "--interval", "0.1", "-o", "json")  # fmt: skip
    assert result.exit_code == 0
    polls = [json.loads(line) for line in result.stdout.splitlines()]
    assert [poll["error"] for poll in polls] == [None, None]  # the second poll had its own time
    for poll in polls:
        for record in poll["instances"]:
            assert_true_values(record, fleet)
    assert result.stderr == (
        "cli_devops: 1 of 6 instances could not be read (1 × deadline of 1s reached)\n" * 2
    )
    assert server.request_paths["/servers"] == 2


def test_deadline_before_servers_answers_is_exit_3(cli, served):
    server = served(fleet_of(3), faults=lambda path, _: Fault.stall(60))
    result = cli("--cp-url", server.url, "--deadline", "0.5", "services")
    assert result.exit_code == 3
    assert f"{server.url}/servers: deadline of 0.5s reached." in result.stderr
    assert server.request_paths["/servers"] == 1


# Size bounds


@pytest.mark.parametrize("fault", [Fault.flood(), Fault.answer(200, b"[" + b" " * 17_000_000)])
def test_oversize_servers_answer_is_exit_3_without_reading_it_whole(cli, served, fault):
    server = served(fleet_of(3), faults=lambda path, _: fault if path == "/servers" else None)
    result = cli("--cp-url", server.url, "services")
    assert result.exit_code == 3
    assert f"{server.url}/servers: response too large." in result.stderr


@pytest.mark.slow
def test_servers_cap_fits_100000_ipv6_addresses(cli, served):
    fleet = fleet_of(2)
    big = [
        f"2001:0db8:ffff:ffff:ffff:ffff:{n // 65536:04x}:{n % 65536:04x}" for n in range(100_000)
    ]
    server = served(fleet)
    fleet.servers_override = json.dumps(["10.0.0.1", *big]).encode()
    fleet.instances = {"10.0.0.1": fleet.instances["10.0.0.1"]}
    result = cli("--cp-url", server.url, "--timeout", "0.5", "--retries", "0", "--deadline", "0.5",
                 "services", "-o", "json")  # fmt: skip
    assert result.exit_code == 0  # the list was read: its addresses are tried (and fail fast)
    assert len(json.loads(result.stdout)) == 100_001


# Validation and chaos


def chaos_seed(fleet: Fleet, rate: float) -> int:
    def every_kind(seed: int) -> bool:
        plan = Faults(chaos=rate, seed=seed)
        return {plan.chaos_kind(f"/{ip}") for ip in fleet.instances} >= set(CHAOS)

    return first_seed(every_kind)


def test_chaos_every_hostile_answer_is_unknown_with_its_reason_and_nothing_else_is(cli, served):
    assert set(CHAOS_REASONS) == set(CHAOS)
    fleet = fleet_of(150, seed=4)
    fleet.junk_servers = list(CHAOS_JUNK)
    plan = Faults(chaos=0.6, seed=chaos_seed(fleet, 0.6))
    server = served(fleet, faults=plan)
    result = cli("--cp-url", server.url, "services", "-o", "json")
    assert result.exit_code == 0
    records = records_of(result.stdout)
    assert sorted(records) == sorted(fleet.instances)
    lost = 0
    for ip, record in records.items():
        kind = plan.chaos_kind(f"/{ip}")
        if kind is None:
            assert_true_values(record, fleet)
        elif kind == "evil-service":
            assert (record["service"], record["cpu"], record["memory"]) == (
                EVIL_SERVICE,  # JSON keeps the original string
                *CHAOS_VALUES,
            )
        else:
            lost += 1
            assert (record["status"], record["cpu"], record["memory"], record["error"]) == (
                "Unknown", None, None, CHAOS_REASONS[kind]
            )  # fmt: skip
    stderr = result.stderr.splitlines()
    assert stderr[0] == (
        f"cli_devops: skipped {len(CHAOS_JUNK)} /servers entries that are not IP addresses"
    )
    assert stderr[1].startswith(f"cli_devops: {lost} of 150 instances could not be read (")
    assert len(stderr) == 2
    assert set(server.request_paths) == set(paths_of(fleet))  # no junk entry was requested
    assert server.request_paths["/servers"] == 1


def test_chaos_never_reaches_the_terminal_in_any_format_or_log(cli, served):
    fleet = fleet_of(150, seed=4)
    fleet.junk_servers = list(CHAOS_JUNK)
    server = served(fleet, faults=Faults(chaos=0.6, seed=chaos_seed(fleet, 0.6)))
    for command in ("services", "status", "unhealthy-services"):
        for output in ("table", "csv"):
            result = cli("--debug", "--cp-url", server.url, command, "-o", output)
            assert result.exit_code in (0, 1)
            assert terminal_clean(result.stdout)
            assert terminal_clean(result.stderr)
            assert "Traceback" not in result.stderr
    table = cli("--cp-url", server.url, "services").stdout
    assert "Evil[2J]0;ownedService" in table
    live = cli("--debug", "--cp-url", server.url, "track", EVIL_SERVICE, "--count", "1")
    assert live.exit_code == 0
    assert "Evil[2J]0;ownedService" in live.stdout
    assert terminal_clean(live.stdout)
    assert terminal_clean(live.stderr)


def test_strict_turns_any_unknown_into_exit_4_for_every_command(cli, served):
    fleet = fleet_of(10)
    server = served(
        fleet, faults=lambda path, _: Fault.answer(404) if path == "/10.0.0.4" else None
    )
    for command in ("services", "status", "unhealthy-services"):
        assert cli("--cp-url", server.url, command).exit_code in (0, 1)
        strict = cli("--cp-url", server.url, "--strict", command, "-o", "json")
        assert strict.exit_code == 4
        assert strict.stdout == ""
        assert strict.stderr == (
            "cli_devops: 1 of 10 instances could not be read (1 × HTTP 404)\n"
            "cli_devops: error: 1 instance could not be read and --strict was given\n"
        )
    assert cli("--cp-url", server.url, "--strict", "services", "--service", "X").exit_code == 4


def test_track_strict_exits_4_after_an_incomplete_poll(cli, served):
    fleet = fleet_of(20)
    service = fleet.instances["10.0.0.1"].service
    server = served(
        fleet, faults=lambda path, _: Fault.answer(500) if path == "/10.0.0.9" else None
    )
    args = ("--cp-url", server.url, "--retries", "0")
    track = ("track", service, "--count", "2", "--interval", "0.1", "-o", "json")
    assert cli(*args, *track).exit_code == 0
    strict = cli(*args, "--strict", *track)
    assert strict.exit_code == 4
    assert len(strict.stdout.splitlines()) == 2
    assert strict.stderr.splitlines()[-1] == (
        "cli_devops: error: 2 of 2 polls were incomplete and --strict was given"
    )


# Auth and transport


def test_token_is_sent_as_bearer_and_required_by_the_api(cli, served, monkeypatch):
    fleet = fleet_of(5)
    server = served(fleet, token=TOKEN)
    result = cli("--cp-url", server.url, "--token", TOKEN, "services", "-o", "json")
    assert result.exit_code == 0
    assert len(records_of(result.stdout)) == 5
    assert server.auth_headers == {f"Bearer {TOKEN}": 6}
    missing = cli("--cp-url", server.url, "services")
    assert missing.exit_code == 3
    assert missing.stderr == (
        f"cli_devops: error: cannot read the CPX API at {server.url}/servers: HTTP 401. "
        "Check --token (or CPX_TOKEN).\n"
    )
    monkeypatch.setenv("CPX_TOKEN", TOKEN)
    assert cli("--cp-url", server.url, "services").exit_code == 0


@pytest.mark.slow
def test_token_never_appears_in_any_output_or_log(cli, served, monkeypatch):
    fleet = fleet_of(5)
    good = served(fleet, token=TOKEN)
    wrong = served(fleet, token="another-token")
    flaky = served(fleet, faults=lambda path, n: Fault.drop() if n == 1 else Fault.answer(418))
    runs = []
    for server in (good, wrong, flaky):
        for output in ("table", "json", "csv"):
            runs.append(cli("--debug", "--cp-url", server.url, "--token", TOKEN,
                            "services", "-o", output))  # fmt: skip
    runs.append(cli("--debug", "--cp-url", "http://127.0.0.1:1", "--token", TOKEN, "status"))
    runs.append(cli("--cp-url", good.url, "--token", TOKEN, "--strict", "services", "-o", "csv"))
    runs.append(cli("--token", TOKEN + " x", "services"))  # rejected value, not echoed
    runs.append(cli("--token", TOKEN, "--timeout", "0", "services"))
    monkeypatch.setenv("CPX_TOKEN", TOKEN)
    runs.append(cli("--debug", "--cp-url", wrong.url, "track", "X", "--count", "1"))
    assert {run.exit_code for run in runs} >= {0, 2, 3}
    assert "Traceback" in "".join(run.stderr for run in runs)  # --debug tracebacks were checked
    for run in runs:
        assert TOKEN not in run.stdout
        assert TOKEN not in run.stderr
    process = run_process("--debug", "--cp-url", wrong.url, "services",
                          env_extra={"CPX_TOKEN": TOKEN})  # fmt: skip
    assert process.exit_code == 3
    assert "Traceback" in process.stderr
    assert TOKEN not in process.stdout + process.stderr
    settings_repr = repr(ClientSettings(base_url=good.url, token=TOKEN))
    app_repr = repr(App(settings=ClientSettings(base_url=good.url, token=TOKEN)))
    assert TOKEN not in settings_repr + app_repr


def test_redirect_to_another_host_does_not_carry_the_token(cli, served):
    fleet = fleet_of(5)
    other = served(fleet)
    home = served(
        fleet,
        token=TOKEN,
        faults=lambda path, _: (
            None if path == "/servers" else Fault.redirect(other.url + path, 307)
        ),
    )
    result = cli("--debug", "--cp-url", home.url, "--token", TOKEN, "services", "-o", "json")
    assert result.exit_code == 0
    for record in records_of(result.stdout).values():
        assert_true_values(record, fleet)
    assert other.auth_headers == {}
    assert sum(other.request_paths.values()) == 5
    assert home.auth_headers == {f"Bearer {TOKEN}": 6}
    assert f"redirect leaves {home.url}: the token is not sent" in result.stderr


def test_redirect_within_the_same_origin_keeps_the_token(cli, served):
    fleet = fleet_of(5)

    def once_elsewhere(path: str, attempt: int) -> Fault | None:
        return Fault.redirect(path) if attempt == 1 else None

    server = served(fleet, token=TOKEN, faults=once_elsewhere)
    result = cli("--cp-url", server.url, "--token", TOKEN, "services", "-o", "json")
    assert result.exit_code == 0
    for record in records_of(result.stdout).values():
        assert_true_values(record, fleet)
    assert server.auth_headers == {f"Bearer {TOKEN}": 12}


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(tls_ca: trustme.CA, served: Callable[..., SimulatorServer]) -> SimulatorServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    return served(fleet_of(4), tls=context)


def test_https_needs_a_trusted_certificate(cli, tls_server, tls_ca, tmp_path):
    assert tls_server.url.startswith("https://127.0.0.1:")
    untrusted = cli("--cp-url", tls_server.url, "services")
    assert untrusted.exit_code == 3
    assert untrusted.stderr == (
        f"cli_devops: error: cannot read the CPX API at {tls_server.url}/servers: "
        "TLS certificate not trusted. Check --ca-cert (or --insecure for testing).\n"
    )
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    trusted = cli("--cp-url", tls_server.url, "--ca-cert", str(ca_file), "services", "-o", "json")
    assert trusted.exit_code == 0, trusted.stderr
    assert len(records_of(trusted.stdout)) == 4
    assert trusted.stderr == ""
    insecure = cli("--cp-url", tls_server.url, "--insecure", "services", "-o", "json")
    assert insecure.exit_code == 0
    assert insecure.stderr == "cli_devops: --insecure: TLS certificates are not verified\n"


def test_tls_options_are_checked(cli, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    bad = cli("--cp-url", "https://127.0.0.1:1", "--ca-cert", str(garbage), "services")
    assert bad.exit_code == 2
    assert bad.stderr == f"cli_devops: error: --ca-cert {garbage}: not a PEM certificate file\n"
    both = cli("--ca-cert", str(garbage), "--insecure", "services")
    assert both.exit_code == 2
    assert "give --ca-cert or --insecure, not both" in both.stderr
    assert cli("--ca-cert", str(tmp_path / "missing.pem"), "services").exit_code == 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_proxy_from_the_environment_is_used(cli, served, monkeypatch):
    fleet = fleet_of(4)
    server = served(fleet)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    result = cli("--cp-url", "http://cpx.invalid:8081", "services", "-o", "json")
    assert result.exit_code == 0, result.stderr
    for record in records_of(result.stdout).values():
        assert_true_values(record, fleet)
    assert server.request_paths["/servers"] == 1


def test_no_proxy_bypasses_the_proxy(cli, served, monkeypatch):
    fleet = fleet_of(4)
    server = served(fleet)
    monkeypatch.setenv("http_proxy", f"127.0.0.1:{closed_port()}")
    refused = cli("--cp-url", server.url, "--retries", "0", "services")
    assert refused.exit_code == 3
    assert "cannot connect to the proxy: connection refused" in refused.stderr
    monkeypatch.setenv("no_proxy", "example.com, 127.0.0.1")
    assert cli("--cp-url", server.url, "services").exit_code == 0


def test_unsupported_proxy_is_a_usage_error_that_hides_the_url(cli, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:pa55word@10.9.9.9:1080")
    result = cli("--cp-url", "https://127.0.0.1:1", "services")
    assert result.exit_code == 2
    assert result.stderr == "cli_devops: error: https_proxy: only http:// proxies are supported\n"


# Options


@pytest.mark.parametrize(
    "option", [("--retries", "-1"), ("--retries", "11"), ("--deadline", "0"), ("--timeout", "0")]
)
def test_bounds_options_are_validated(cli, option):
    result = cli(*option, "services")
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


@pytest.mark.slow
def test_simulate_command_injects_seeded_faults():
    """`simulate --chaos --fail-rate --slow-rate` as a process: what comes back is what the
    seed says (a redirect loop is left out of the fleet chosen here: its hops also draw
    failures, which this prediction does not follow)."""
    size = 40

    def predictable(seed: int) -> bool:
        plan = Faults(0.2, 0.2, 50, CHAOS_RATE, seed)
        kinds = {plan.chaos_kind(f"/10.0.0.{n}") for n in range(1, size + 1)}
        return predict(plan, "/servers", 3)[1] is None and "redirect-loop" not in kinds

    seed = first_seed(predictable)
    args = ["--port", "0", "--seed", str(seed), "--fleet", str(size), "--chaos",
            "--fail-rate", "0.2", "--slow-rate", "0.2", "--slow-ms", "50"]  # fmt: skip
    simulator = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "simulate", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=hermetic_environ(),
    )
    try:
        assert simulator.stdout is not None
        line = simulator.stdout.readline()
        match = re.search(r"listening on (http://\S+) \((.*)\)", line)
        assert match, line
        assert match.group(2) == (
            f"{size} instances, seed {seed}, 20% failing, 20% stalling 50 ms, chaos"
        )
        result = run_process("--cp-url", match.group(1), "services", "-o", "json")
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    assert result.exit_code == 0, result.stderr
    plan = Faults(0.2, 0.2, 50, CHAOS_RATE, seed)
    fleet = Fleet.generate(size, seed=seed)
    records = records_of(result.stdout)
    assert sorted(records) == sorted(fleet.instances)
    for ip, record in records.items():
        kind = plan.chaos_kind(f"/{ip}")
        _, transient = predict(plan, f"/{ip}", 3)
        expected = transient or (CHAOS_REASONS[kind] if kind else None)
        assert record["error"] == expected, (ip, kind)
    assert f"skipped {len(CHAOS_JUNK)} /servers entries" in result.stderr


# Properties of the parsers and renderers


@given(st.binary(max_size=2000))
def test_decode_json_accepts_or_explains_any_bytes(body):
    try:
        decode_json(body)
    except PayloadError as err:
        assert str(err) in (
            "answer is not valid JSON",
            "answer is nested too deeply",
            "answer has too many arrays or objects",
        )


@given(st.one_of(st.none(), st.text(max_size=60)), st.floats(0, 4e9))
def test_parse_retry_after_never_raises(value, now):
    seconds = parse_retry_after(value, now)
    assert seconds is None or seconds >= 0


def test_parse_retry_after_forms():
    now = 1_800_000_000.0
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(" 0 ", now) == 0
    assert parse_retry_after("Fri, 15 Jan 2027 08:00:10 GMT", 1_800_000_000.0) == 10
    assert parse_retry_after("Fri, 15 Jan 2027 07:00:00 GMT", now) == 0  # in the past
    for junk in ("-1", "1.5", "soon", "", "9" * 50, "\x1b[2J"):
        assert parse_retry_after(junk, now) is None


instance_strategy = st.builds(
    Instance,
    ip=st.ip_addresses().map(str),
    service=st.one_of(st.none(), st.text(max_size=30)),
    cpu=st.one_of(st.none(), st.floats(0, 100)),
    memory=st.one_of(st.none(), st.floats(0, 100)),
    error=st.one_of(st.none(), st.text(max_size=30)),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.lists(instance_strategy, max_size=8), st.sampled_from(["table", "csv", "json"]),
       st.booleans())  # fmt: skip
def test_renderers_never_raise_and_never_emit_control_characters(instances, output, tty):
    thresholds = Thresholds()
    summaries = summarize_services(instances, thresholds, 2)
    reports = [
        instances_report(instances, thresholds),
        status_report(summaries, 2),
        flagged_report(summaries, 2),
    ]
    for report in reports:
        env = Environment(stdout=io.StringIO(), stdout_isatty=tty, width=80)
        write_report(report, output, env)  # type: ignore[arg-type]
        text = env.stdout.getvalue()  # type: ignore[attr-defined]
        if output == "json":
            assert json.loads(text) == json.loads(json.dumps(report.records))
        else:
            assert terminal_clean(text)


@given(st.lists(st.text(max_size=20), min_size=1, max_size=6), st.text(max_size=40))
def test_stderr_lines_never_carry_control_characters(reasons, message):
    env = Environment(stderr=io.StringIO())
    report_unread([Instance("10.0.0.1", None, None, None, r) for r in reasons], 9, env)
    env.warn(message)
    assert terminal_clean(env.stderr.getvalue())  # type: ignore[attr-defined]


@given(st.dictionaries(st.sampled_from(["service", "cpu", "memory"]),
                       st.one_of(st.text(), st.floats(), st.integers(), st.none())))  # fmt: skip
def test_every_rejection_has_a_reason_from_the_documented_list(payload):
    instance = parse_instance("10.0.0.1", payload)
    if instance.error is not None:
        assert re.fullmatch(
            r"service is (missing|not a string|longer than 256 characters"
            r"|empty or has no printable characters)"
            r"|(cpu|memory) is (missing|not a percentage|not a number|outside 0-100%)",
            instance.error,
        )


# docs/failure-behaviour.md states each guarantee and names the tests here that prove it.

GUARANTEES: dict[str, list[Callable[..., None]]] = {
    "Retries": [
        test_flaky_api_failing_10_percent_gives_complete_correct_data_with_defaults,
        test_retries_recover_exactly_the_instances_with_a_good_attempt_left,
        test_transient_failures_are_retried,
        test_backoff_waits_grow_exponentially_with_jitter,
        test_failures_another_attempt_cannot_cure_are_not_retried,
        test_retry_after_is_honoured,
        test_retries_are_capped_per_run_when_everything_fails,
        test_exporter_gets_a_fresh_retry_budget_and_deadline_every_scrape,
    ],
    "Time bounds": [
        test_one_hung_instance_holds_the_run_at_most_its_attempts,
        test_slow_rate_stalls_become_timeouts_exactly_where_seeded,
        test_latency_beyond_the_timeout_is_a_timeout_and_within_it_is_fine,
        test_deadline_ends_the_run_with_what_was_read,
        test_deadline_applies_to_each_track_poll,
        test_deadline_before_servers_answers_is_exit_3,
    ],
    "Size bounds": [
        test_oversize_servers_answer_is_exit_3_without_reading_it_whole,
        test_servers_cap_fits_100000_ipv6_addresses,
        test_chaos_every_hostile_answer_is_unknown_with_its_reason_and_nothing_else_is,
    ],
    "Validation": [
        test_chaos_every_hostile_answer_is_unknown_with_its_reason_and_nothing_else_is,
        test_every_rejection_has_a_reason_from_the_documented_list,
        test_decode_json_accepts_or_explains_any_bytes,
    ],
    "Terminal safety": [
        test_chaos_never_reaches_the_terminal_in_any_format_or_log,
        test_renderers_never_raise_and_never_emit_control_characters,
        test_stderr_lines_never_carry_control_characters,
    ],
    "Partial results": [
        test_without_retries_exactly_the_failed_instances_are_unknown,
        test_strict_turns_any_unknown_into_exit_4_for_every_command,
        test_track_strict_exits_4_after_an_incomplete_poll,
        test_servers_failing_on_every_attempt_is_exit_3_after_the_retries,
    ],
    "Token": [
        test_token_is_sent_as_bearer_and_required_by_the_api,
        test_token_never_appears_in_any_output_or_log,
        test_redirect_to_another_host_does_not_carry_the_token,
        test_redirect_within_the_same_origin_keeps_the_token,
    ],
    "TLS and proxies": [
        test_https_needs_a_trusted_certificate,
        test_tls_options_are_checked,
        test_proxy_from_the_environment_is_used,
        test_no_proxy_bypasses_the_proxy,
        test_unsupported_proxy_is_a_usage_error_that_hides_the_url,
    ],
}


def node_id(test: Callable[..., None]) -> str:
    return f"{test.__module__.rsplit('.', 1)[-1]}.py::{test.__name__}"


def test_failure_behaviour_doc_states_each_guarantee_next_to_its_tests():
    text = FAILURE_DOC.read_text()
    stated = re.findall(r"^- \*\*(.+?)\.?\*\*", text, flags=re.MULTILINE)
    assert stated == list(GUARANTEES)
    table = text.split("## Which tests prove each guarantee", 1)[1]
    rows = dict(re.findall(r"^\| (.+?) \| (.+?) \|$", table, flags=re.MULTILINE)[1:])
    assert list(rows) == list(GUARANTEES)
    for guarantee, tests in GUARANTEES.items():
        named = re.findall(r"`([\w:.]+)`", rows[guarantee])
        assert named == [node_id(test) for test in tests]
