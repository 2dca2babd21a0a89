"""The exporter's listener, bounded: no number of idle or slow clients can starve a scrape.

- **A cap on open connections** (`max_connections`, 64 by default). A connection is *idle* while
  it waits for (the rest of) a request, *busy* while its request is answered. When the cap is
  reached, the connection that has been idle longest is closed to make room, so a thousand
  connections held open (idle, or with half a request) cannot keep a scrape out; when every
  connection is busy, the new one is closed at once.
- **An idle timeout** (`idle_timeout`, 10 s): each read or write of a connection waits at most
  that long, so a client that stops sending (or reading) frees its thread.
- **A listen backlog** of 1,024, so a burst of connections is queued by the kernel, not refused.

`bound_listener` sets the limits on a server; the exporter toolkit's flags (`--web.max-requests`
and the like) call it with their values.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_IDLE_TIMEOUT = 10.0
LISTEN_BACKLOG = 1024


class BoundedListener:
    """For a `socketserver` TCP server with threads: the cap and the idle timeout above."""

    max_connections = DEFAULT_MAX_CONNECTIONS
    idle_timeout = DEFAULT_IDLE_TIMEOUT
    request_queue_size = LISTEN_BACKLOG

    def _connections(self) -> dict[Any, float | None]:
        """Open connections: the monotonic time each became idle, or None while busy."""
        table: dict[Any, float | None] | None = self.__dict__.get("_open")
        if table is None:
            table = self.__dict__.setdefault("_open", {})
            self.__dict__.setdefault("_open_lock", threading.Lock())
        return table

    def _lock(self) -> threading.Lock:
        self._connections()
        lock: threading.Lock = self.__dict__["_open_lock"]
        return lock

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit the connection, closing the longest-idle one when at the cap."""
        table = self._connections()
        victim = None
        with self._lock():
            if len(table) >= self.max_connections:
                idle = [(since, sock) for sock, since in table.items() if since is not None]
                if not idle:
                    return False  # every connection is answering: refuse this one
                victim = min(idle, key=lambda pair: pair[0])[1]
                del table[victim]
            table[request] = time.monotonic()
            request.settimeout(self.idle_timeout)
        if victim is not None:
            _hang_up(victim)
        return True

    def mark_busy(self, request: Any, busy: bool) -> None:
        """The handler says a whole request arrived (busy) or its answer is sent (idle)."""
        table = self._connections()
        with self._lock():
            if request in table:
                table[request] = None if busy else time.monotonic()

    def shutdown_request(self, request: Any) -> None:
        with self._lock():
            self._connections().pop(request, None)
        super().shutdown_request(request)  # type: ignore[misc]

    def open_connections(self) -> int:
        with self._lock():
            return len(self._connections())


def _hang_up(sock: socket.socket) -> None:
    """Wake the connection's thread with end-of-file; it then closes the socket itself."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def bound_listener(
    server: BoundedListener,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> None:
    """Set the listener's cap on open connections and its idle timeout (before serving)."""
    if max_connections < 1 or not idle_timeout > 0:
        raise ValueError("max_connections must be at least 1 and idle_timeout positive")
    server.max_connections = max_connections
    server.idle_timeout = idle_timeout
