"""Single key presses from the terminal while a live view owns it (`q` or Escape to quit).

The terminal is put in cbreak mode (keys arrive one at a time, not echoed; Ctrl+C still sends
SIGINT) only while the view is open, and always put back. Nothing happens when stdin is not a
terminal: piped input is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import IO, Any

QUIT_KEYS = frozenset({b"q", b"Q", b"\x1b"})
"""`q` (any case) or a lone Escape; an escape sequence (an arrow key: ESC [ A) is not Escape."""


def is_quit(chunk: bytes) -> bool:
    """Whether the bytes of one read hold a quit key."""
    if chunk == b"\x1b":
        return True
    return b"q" in chunk or b"Q" in chunk


class KeyListener:
    """`with KeyListener(stdin):` then `listen(on_quit)` from inside the running event loop
    calls `on_quit()` when q or Escape is pressed; `__exit__` restores the terminal's mode and
    stops listening."""

    def __init__(self, stdin: IO[Any] | None) -> None:
        self._on_quit: Callable[[], object] = lambda: None
        self._fd: int | None = None
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(AttributeError, OSError, ValueError):
            if stdin is not None and stdin.isatty():
                self._fd = stdin.fileno()

    def __enter__(self) -> KeyListener:
        if self._fd is None:
            return self
        try:
            import termios
            import tty

            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        except (ImportError, OSError):  # no termios (Windows), or not a real terminal
            self._fd = None
        return self

    def listen(self, on_quit: Callable[[], object]) -> None:
        self._on_quit = on_quit
        if self._fd is None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._read)

    def _read(self) -> None:
        assert self._fd is not None
        try:
            chunk = os.read(self._fd, 64)
        except OSError:
            chunk = b""
        if chunk and is_quit(chunk):
            self._on_quit()

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        if self._saved is not None:
            import termios

            with contextlib.suppress(OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
