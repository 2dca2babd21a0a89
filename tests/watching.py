"""Helpers of the `watch` tests: the command as a process whose event lines are read as they
come, a fleet with a service that flaps on a schedule, and a webhook receiver on loopback."""

from __future__ import annotations

import atexit
import json
import queue
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

from cli_devops.simulator import Flap, Fleet, SimInstance, SimulatorServer

from .conftest import hermetic_environ

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "docs" / "watch-event.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
WAIT = 30.0
"""How long a test waits for an event it expects (a hang is the failure; events come in ~1 s)."""


FLAPPING_IP = "10.2.0.2"


def flapping_fleet() -> Fleet:
    """Pay: two healthy instances, one of which `start_flap` overloads for a while (Pay is then
    under-replicated); Geo: three healthy instances, never an event."""
    return Fleet({
        "10.2.0.1": SimInstance("Pay", 10, 20),
        FLAPPING_IP: SimInstance("Pay", 30, 40),
        "10.2.0.3": SimInstance("Geo", 10, 10),
        "10.2.0.4": SimInstance("Geo", 10, 10),
        "10.2.0.5": SimInstance("Geo", 10, 10),
    })  # fmt: skip


def start_flap(server: SimulatorServer, down: float = 1.0, polls: int = 2) -> None:
    """Once the client has read /servers `polls` times (it runs and has seen the fleet
    healthy), overload Pay's second instance for `down` seconds, from 0.2 s from now."""
    wait_until(lambda: server.request_paths["/servers"] >= polls)
    fleet = server.fleet
    fleet.instances[FLAPPING_IP] = replace(
        fleet.instances[FLAPPING_IP], flap=Flap(time.time() + 0.2, down)
    )


class Watch:
    """`cli_devops ARGS` as a process; `events()` reads its stdout lines as events, checked
    against the published JSON Schema."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli_devops", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=hermetic_environ(),
        )
        atexit.register(self._kill)  # a failed test's process is not left running
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def next_event(self, timeout: float = WAIT) -> dict[str, Any] | None:
        """The next event, or None when stdout ended or nothing came within `timeout`."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is None:
            return None
        assert line.endswith("\n")
        event: dict[str, Any] = json.loads(line)
        VALIDATOR.validate(event)
        return event

    def events(self, count: int) -> list[dict[str, Any]]:
        got = []
        for _ in range(count):
            event = self.next_event()
            assert event is not None, f"only {got} came; stderr: {self.stop()[1]}"
            got.append(event)
        return got

    def stop(self, sig: int | None = None) -> tuple[int, str]:
        """Send `sig` (SIGTERM by default); the exit status and stderr."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if sig is None else sig)
        try:
            _, err = self.process.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return self.process.returncode, err


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST, answers `statuses` in turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.paths.append(self.path)
                receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition: Any, timeout: float = WAIT) -> None:
    """Poll `condition()` every 50 ms until true; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
