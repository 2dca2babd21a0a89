"""What the resilience tests share: seeded fleets, the predicted outcome of a fault plan, and the
reasons a user must see for each chaos answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cli_devops.client import (
    RETRY_BUDGET_MIN,
    RETRY_BUDGET_RATIO,
)
from cli_devops.simulator import (
    Fault,
    Faults,
    Fleet,
    SimulatorServer,
)

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
