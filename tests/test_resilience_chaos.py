"""The chaos suite, part two: hostile answers never reach the terminal or crash the tool, and
`--strict` turns any unknown instance into exit 4; the bounds options are checked."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from cli_devops.simulator import (
    CHAOS,
    CHAOS_JUNK,
    CHAOS_RATE,
    CHAOS_VALUES,
    EVIL_SERVICE,
    Fault,
    Faults,
    Fleet,
)

from .conftest import hermetic_environ, run_process
from .resilience_helpers import (
    CHAOS_REASONS,
    assert_true_values,
    first_seed,
    fleet_of,
    paths_of,
    predict,
    records_of,
    terminal_clean,
)

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
