"""The chaos suite, part one: retries, time bounds and size bounds. A failing, slow or huge CPX
API never hangs the tool or floods it; every scenario runs the real CLI against the simulator on
loopback, with faults drawn from a seed, so each test knows exactly which instances come back."""

from __future__ import annotations

import json
import re
import time

import pytest

from cli_devops.client import (
    BACKOFF_CAP,
    RETRY_BUDGET_MIN,
    RETRY_BUDGET_RATIO,
    ClientSettings,
)
from cli_devops.simulator import (
    Fault,
    Faults,
)

from .resilience_helpers import (
    assert_true_values,
    first_seed,
    fleet_of,
    paths_of,
    predict,
    records_of,
    requests_made,
    retry_budget,
)

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
    for wait, (low, high) in zip(waits, [(0.1, 0.2), (0.2, 0.4), (0.4, 0.8)], strict=False):
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
