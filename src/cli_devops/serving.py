"""Serving from a background thread, and the foreground wait of the serving commands.

The reference-like CPX server and the Prometheus exporter both run an `http.server` this way;
tests start them on port 0 and read the URL back. `simulate` and `exporter` both block in
`serve_until_stopped` until Ctrl+C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable

from cli_devops.lifecycle import STOP_SIGNALS, stop_signals

__all__ = ["STOP_SIGNALS", "BackgroundServer", "loopback_url", "serve_until_stopped"]


def loopback_url(host: str, port: int, scheme: str = "http") -> str:
    """Base URL a client on this machine can use; wildcard hosts map to their loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


class BackgroundServer:
    """Runs `httpd.serve_forever` in a daemon thread until `stop()` (idempotent)."""

    def __init__(self, httpd: socketserver.TCPServer, name: str, poll_interval: float) -> None:
        self.httpd = httpd
        self.port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=name,
            daemon=True,
        )
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        """Stop serving, close the listening socket and join the thread."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()


def serve_until_stopped(running: Callable[[], bool] = lambda: True) -> None:
    """Block until SIGTERM or SIGHUP (only heard when called from the main thread) or
    `running()` turning False. Ctrl+C raises KeyboardInterrupt as usual."""
    stopped = threading.Event()
    with stop_signals(lambda signum: stopped.set()):
        while not stopped.wait(0.5) and running():
            pass
