"""Reading a file the user names (the config file, the web config file, a secret file): opened
without blocking, so a FIFO at the path cannot hang the command, and read only when it is a
regular file, at most a bounded number of bytes."""

from __future__ import annotations

import os
import stat


class NotRegularFile(Exception):
    """The path names a FIFO, a device, a directory or a socket, not a regular file."""


def read_regular(path: str | os.PathLike[str], limit: int) -> tuple[bytes, int]:
    """At most `limit + 1` bytes of the regular file at `path` (one more than `limit`, so the
    caller can tell a file that is too large), and its mode. Raises NotRegularFile for anything
    but a regular file, and OSError when it cannot be opened or read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path)
        return file.read(limit + 1), mode
