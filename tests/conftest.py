"""Fixtures: the bundled simulator on loopback, and the CLI run in-process or as a process."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from cli_devops.cli import run
from cli_devops.simulator import Fleet, SimInstance, SimulatorServer

HOST_VARIABLES = (
    "CPX_URL", "CPX_TOKEN", "NO_COLOR", "CPX_CONFIG", "CPX_CONTEXT", "CPX_PROMETHEUS_URL",
    "CPX_PROMETHEUS_TOKEN", "COLUMNS", "LINES",
)  # fmt: skip
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
"""Variables of the machine running the tests that would change what the CLI does; proxy
variables are matched in any case, as the standard library does. COLUMNS and LINES win over a
terminal's own size, and Textual's headless tests leave them set in the test process."""


EMPTY_CONFIG_HOME = tempfile.mkdtemp(prefix="cli-devops-tests-config-")
"""XDG_CONFIG_HOME of every CLI the tests run: no config file, whatever the machine has."""
atexit.register(shutil.rmtree, EMPTY_CONFIG_HOME, True)


def hermetic_environ(**extra: str) -> dict[str, str]:
    """This process's environment without the variables above and with an empty config
    directory, plus `extra`."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if name not in HOST_VARIABLES and name.lower() not in PROXY_VARIABLES
    }
    return {**kept, "XDG_CONFIG_HOME": EMPTY_CONFIG_HOME, **extra}


# A test run started in the background inherits SIGINT as ignored, and exec keeps an ignored
# signal ignored, so the Ctrl+C tests' children would never see it. A handler here is reset to
# the default in every child at exec, where Python turns it into KeyboardInterrupt as usual.
signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def small_fleet() -> Fleet:
    """Ten instances over four services, with every health case the commands must tell apart."""
    return Fleet(
        {
            "10.0.0.1": SimInstance("UserService", 10, 20),
            "10.0.0.2": SimInstance("UserService", 90, 90),  # exactly at threshold: Healthy
            "10.0.0.10": SimInstance("UserService", 91, 15),  # above: Unhealthy
            "10.0.0.3": SimInstance("AuthService", 50.5, 40),
            "10.0.0.4": SimInstance("AuthService", 95, 20),
            "10.0.0.5": SimInstance("MLService", 99, 99),
            "10.0.0.6": SimInstance("MLService", 30, 100),
            "10.0.0.7": SimInstance("GeoService", 5, 5),
            "10.0.0.8": SimInstance("GeoService", 6, 7),
            "10.0.0.9": SimInstance("GeoService", 7, 91),
        },
        drift=False,
    )


@pytest.fixture
def fleet() -> Fleet:
    return small_fleet()


@pytest.fixture
def sim(fleet: Fleet) -> Iterator[SimulatorServer]:
    server = SimulatorServer(fleet, "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def other_sim() -> Iterator[SimulatorServer]:
    """A second CPX with a fleet of its own (two instances of one service)."""
    fleet = Fleet(
        {"10.9.0.1": SimInstance("BillingService", 20, 30),
         "10.9.0.2": SimInstance("BillingService", 95, 30)},
        drift=False,
    )  # fmt: skip
    server = SimulatorServer(fleet, "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the CLI in this process, as `cli_devops ARGS`; returns exit code and output."""
    for name in set(os.environ) - set(hermetic_environ()):
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", EMPTY_CONFIG_HOME)

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        return Result(int(code), out, err)

    return invoke


def run_process(
    *args: str, timeout: float = 60, env_extra: dict[str, str] | None = None, **kwargs: object
) -> Result:
    """Run `python -m cli_devops ARGS` as a real process (no terminal), in a hermetic
    environment plus `env_extra`."""
    env = hermetic_environ(**(env_extra or {}))
    done = subprocess.run(
        [sys.executable, "-m", "cli_devops", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    return Result(done.returncode, done.stdout, done.stderr)


def stop_process(
    process: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 60
) -> tuple[str, str]:
    """Send `sig` and return the rest of stdout and stderr; a process that does not end within
    `timeout` is killed and the test fails."""
    process.send_signal(sig)
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to bind"
)


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
