"""The simulator as a package of its own, and `simulate --reference` serving the reference fleet."""

from __future__ import annotations

import collections
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import cli_devops.simulator
from cli_devops.simulator import REFERENCE_SERVICES, Fleet, reference_service

from .conftest import hermetic_environ, run_process, stop_process

PACKAGE = Path(cli_devops.simulator.__file__).resolve().parent

# The reference server's list as it publishes it (cpx_server.py), RoleService twice.
PUBLISHED_SERVICES = [
    "PermissionsService",
    "AuthService",
    "MLService",
    "StorageService",
    "TimeService",
    "GeoService",
    "TicketService",
    "RoleService",
    "IdService",
    "UserService",
    "RoleService",
]


def published_service(ip: str) -> str:
    """The reference server's rule, written out separately from the package's: the hex MD5
    of the address read as a number, modulo the list's length."""
    number = int(hashlib.md5(ip.encode("utf-8"), usedforsecurity=False).hexdigest(), 16)
    return PUBLISHED_SERVICES[number % len(PUBLISHED_SERVICES)]


REFERENCE_IPS = [f"10.58.1.{n}" for n in range(1, 151)]
EXPECTED = {ip: published_service(ip) for ip in REFERENCE_IPS}


def test_the_simulator_imports_nothing_of_the_client_side():
    code = (
        "import sys, cli_devops.simulator; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('cli_devops', 'aiohttp', "
        "'yarl', 'rich', 'click', 'prometheus_client')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=hermetic_environ(),
        check=True,
        timeout=60,
    )
    loaded = set(done.stdout.split())
    modules = {f"cli_devops.simulator.{path.stem}" for path in PACKAGE.glob("*.py")}
    # serving's stop signals come from lifecycle, which imports only the standard library
    assert loaded == {
        "cli_devops",
        "cli_devops.serving",
        "cli_devops.lifecycle",
        "cli_devops.simulator",
    } | (modules - {"cli_devops.simulator.__init__"})


def test_no_module_of_the_package_is_over_500_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert len(sizes) >= 7
    assert max(sizes.values()) <= 500, sizes


def test_reference_rule_matches_the_published_one():
    assert list(REFERENCE_SERVICES) == PUBLISHED_SERVICES
    for ip in [*REFERENCE_IPS, "10.58.1.0", "10.58.1.151", "::1", "10.0.0.1"]:
        assert reference_service(ip) == published_service(ip)


def test_reference_fleet_is_the_reference_servers():
    fleet = Fleet.reference()
    assert {ip: instance.service for ip, instance in fleet.instances.items()} == EXPECTED
    # Not a rule that happens to give one service everywhere: the fleet is uneven like the
    # reference's, and RoleService, listed twice, runs on the most instances.
    counts = collections.Counter(EXPECTED.values())
    assert len(counts) == 10
    assert counts.most_common(1)[0][0] == "RoleService"


LOOPBACK_ANY_PORT = ("--host", "127.0.0.1", "--port", "0")


@contextmanager
def simulate_reference() -> Iterator[str]:
    """`cli_devops simulate --reference` as a real process on a free loopback port; its URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "simulate", "--reference", *LOOPBACK_ANY_PORT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hermetic_environ(),
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        found = re.match(r"CPX reference server listening on (http://127\.0\.0\.1:\d+) ", line)
        assert found, line
        yield found.group(1)
    finally:
        stop_process(child)


@pytest.mark.slow
def test_simulate_reference_serves_the_reference_fleet_through_the_cli():
    with simulate_reference() as url:
        services = run_process("--cp-url", url, "services", "-o", "json")
        status = run_process("--cp-url", url, "status", "-o", "json")
    assert services.exit_code in (0, 1), services.stderr
    records = json.loads(services.stdout)
    assert sorted(record["ip"] for record in records) == sorted(REFERENCE_IPS)
    assert {record["ip"]: record["service"] for record in records} == EXPECTED
    assert all(record["error"] is None for record in records)

    assert status.exit_code in (0, 1), status.stderr
    per_service = {record["service"]: record["instances"] for record in json.loads(status.stdout)}
    assert per_service == dict(collections.Counter(EXPECTED.values()))
