"""The simulator in several processes sharing one port, so it can use several cores."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import sys
import time
from typing import NoReturn

from cli_devops.serving import serve_until_stopped
from cli_devops.simulator.faults import FaultPlan
from cli_devops.simulator.fleet import Fleet
from cli_devops.simulator.server import SimulatorServer

WORKERS_SUPPORTED = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""Whether :class:`SimulatorWorkers` can run here: it needs ``fork`` and Linux's ``SO_REUSEPORT``,
which spreads new connections evenly over the processes listening on one port."""


class SimulatorWorkers:
    """:class:`SimulatorServer` in ``workers`` processes on one port, so it scales across cores.

    This process binds first (port 0 is resolved here), then forks ``workers - 1`` processes
    before any thread starts; each one, this one included, runs its own loop and listens with
    ``SO_REUSEPORT``, so the kernel spreads connections over them. Every worker serves its own
    copy of the same ``fleet`` (drift depends only on the seed and the clock, so they all answer
    alike) and marks its answers ``X-Worker: <n>`` (1 is this process). Fault attempt counters
    (``request_paths``) are per worker. :meth:`start` returns once every worker listens;
    :meth:`stop` stops them all and reaps them, and a worker whose parent is gone stops by
    itself. Linux only (see :data:`WORKERS_SUPPORTED`).
    """

    def __init__(  # noqa: PLR0913 -- the knobs of SimulatorServer that `simulate` uses
        self,
        fleet: Fleet,
        host: str,
        port: int,
        workers: int,
        *,
        latency_ms: float = 0.0,
        faults: FaultPlan | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.fleet = fleet
        self.host = host
        self.port = port
        self.workers = workers
        self.latency_ms = latency_ms
        self.faults = faults
        self.url = ""
        self.pids: list[int] = []
        """Process ids of the forked workers (this process is worker 1)."""
        self._server: SimulatorServer | None = None
        self._inherited: list[int] = []

    def _simulator(self, worker: int) -> SimulatorServer:
        return SimulatorServer(
            self.fleet,
            self.host,
            self.port,
            latency_ms=self.latency_ms,
            faults=self.faults,
            reuse_port=True,
            worker=worker,
        )

    def start(self) -> str:
        """Start every worker; returns the base URL. Bind errors raise :class:`OSError`."""
        if not WORKERS_SUPPORTED:
            raise OSError("serving from several processes needs Linux (SO_REUSEPORT)")
        if self._server is not None:
            raise RuntimeError("simulator already started")
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as reserved:
            reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            reserved.bind(address)
            self.port = reserved.getsockname()[1]
            self._inherited = [reserved.fileno()]
            try:
                readiness = []
                for worker in range(2, self.workers + 1):
                    readiness.append(self._fork(worker))
                    self._inherited.append(readiness[-1])
                self._server = self._simulator(1)
                self.url = self._server.start()
                for ready in readiness:
                    self._wait_ready(ready)
            except BaseException:
                self.stop()
                raise
        return self.url

    def _fork(self, worker: int) -> int:
        """Fork worker number ``worker``; returns the pipe it reports readiness on."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            for inherited in self._inherited:
                os.close(inherited)
            self._run_worker(worker, write_end, parent)
        os.close(write_end)
        self.pids.append(pid)
        return read_end

    def _run_worker(self, worker: int, ready: int, parent: int) -> NoReturn:
        """The whole life of a forked worker; it never returns into the caller's code."""
        status = 1
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            server = self._simulator(worker)
            try:
                server.start()
            except OSError as err:
                os.write(ready, (err.strerror or str(err)).encode())
                os._exit(status)
            os.write(ready, b"ok")
            os.close(ready)
            status = 0
            with contextlib.suppress(KeyboardInterrupt):
                serve_until_stopped(lambda: server.wait(0) and os.getppid() == parent)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            server.stop()
        except BaseException:  # a forked worker must end here, whatever happened
            status = 1
        os._exit(status)

    def _wait_ready(self, ready: int) -> None:
        chunks = []
        try:
            while chunk := os.read(ready, 1024):
                chunks.append(chunk)
        finally:
            os.close(ready)
        answer = b"".join(chunks)
        if answer != b"ok":
            raise OSError(answer.decode(errors="replace") or "a worker process failed to start")

    def stop(self) -> None:
        """Stop this process's server, then every worker (SIGTERM, then SIGKILL after 10 s)."""
        if self._server is not None:
            self._server.stop()
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for pid in self.pids:
            while not self._reaped(pid):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = math.inf
                time.sleep(0.01)
        self.pids = []

    @staticmethod
    def _reaped(pid: int) -> bool:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return done == pid

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; False once this process's server no longer runs."""
        return self._server is not None and self._server.wait(timeout)

    def __enter__(self) -> SimulatorWorkers:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
