"""The concurrent simulator: one asyncio loop in a background thread serving a :class:`Fleet`."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import threading

from cli_devops.serving import loopback_url
from cli_devops.simulator.faults import FaultPlan
from cli_devops.simulator.fleet import Fleet
from cli_devops.simulator.protocol import DateHeader, HttpProtocol


class SimulatorServer:
    """The concurrent simulator: HTTP/1.1 keep-alive, many connections, one asyncio loop.

    The loop runs in a background thread so tests and benchmarks can drive it from the main
    thread. ``latency_ms`` delays every response on the loop's timers, never blocking other
    connections. ``request_paths`` counts every request target received, so tests can assert a
    client never asked for a junk entry.

    ``faults`` answers chosen requests with a :class:`Fault`. With ``token``, any request without
    ``Authorization: Bearer <token>`` gets 401; ``auth_headers`` counts the Authorization values
    received (so a test can see a token did not travel). ``tls`` serves HTTPS with that context.
    Absolute-form targets (``GET http://host/path``) are answered too, as a proxy passes them.
    ``reuse_port`` binds with ``SO_REUSEPORT`` so several processes can share the port (see
    :class:`SimulatorWorkers`); ``worker`` adds an ``X-Worker: <worker>`` header to the answers,
    so a client can tell which process answered.
    """

    def __init__(  # noqa: PLR0913 -- each keyword is one independent knob of the fake API
        self,
        fleet: Fleet,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
        faults: FaultPlan | None = None,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        worker: int | None = None,
    ) -> None:
        self.fleet = fleet
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.faults = faults
        self.token = token
        self.tls = tls
        self.reuse_port = reuse_port
        self.server_header = b"Server: cpx-simulator\r\n" + (
            b"" if worker is None else f"X-Worker: {worker}\r\n".encode()
        )
        self.url = ""
        self.request_paths: collections.Counter[str] = collections.Counter()
        self.auth_headers: collections.Counter[str] = collections.Counter()
        self.connections_opened = 0
        """Connections accepted so far, so tests can tell whether a client reuses them."""
        self.date_header = DateHeader()
        """The ``Date:`` header line of the answers, formatted once per second."""
        self._connections: set[HttpProtocol] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def connection_made(self, connection: HttpProtocol) -> None:
        """Count and remember a new connection, so :meth:`stop` can abort it."""
        self._connections.add(connection)
        self.connections_opened += 1

    def connection_lost(self, connection: HttpProtocol) -> None:
        self._connections.discard(connection)

    def start(self) -> str:
        """Start listening in a background thread; returns the base URL once connectable.

        Bind errors (e.g. port in use) are raised here as :class:`OSError`.
        """
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        failure: list[Exception] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(
                        lambda: HttpProtocol(self, loop),
                        self.host,
                        self.port,
                        backlog=1024,
                        ssl=self.tls,
                        reuse_port=self.reuse_port or None,
                    )
                )
            except Exception as exc:
                failure.append(exc)
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
                with contextlib.suppress(asyncio.TimeoutError):
                    loop.run_until_complete(asyncio.wait_for(self._server.wait_closed(), 1.0))
            finally:
                loop.close()

        thread = threading.Thread(target=run, name="cpx-simulator", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            self._loop = None
            raise failure[0]
        self._thread = thread
        assert self._server is not None
        sockets = self._server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        self.url = loopback_url(self.host, self.port, "http" if self.tls is None else "https")
        return self.url

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
        if self._loop is not None:
            self._loop.stop()

    def stop(self) -> None:
        """Close the listener and every open connection, then join the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._shutdown)
        thread.join()
        self._thread = None

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; False once the server is no longer running."""
        if self._thread is None or not self._thread.is_alive():
            return False
        self._thread.join(timeout)
        return True

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
