"""Every file and stream the tool writes, through two doors.

`OutputFile` is the one writer of data files (`top --record`, exports): a path, `-` for stdout,
a pipe or a FIFO; each line goes out with `os.write`, so a full disk, a FIFO nobody reads or a
closed pipe is a `CannotWrite` naming the file at the line that failed, never a traceback, and
what was written before stays.

`locked_update` is the one way a file is changed in place (the config file): an advisory lock
(the filelock library) beside the file, then read, change, write a temporary file in the same
directory, fsync, `os.replace`, fsync the directory. Concurrent writers queue on the lock, so each
one's change lands; a reader never sees half a file.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from cli_devops.errors import CannotWrite

if TYPE_CHECKING:
    from pathlib import Path

LOCK_TIMEOUT = 30.0
"""Longest wait for another writer's lock (each holds it for milliseconds)."""

_REASONS = {
    errno.ENXIO: "no process is reading it",
    errno.EPIPE: "the reader went away",
    errno.ENOSPC: "no space left on the device",
    errno.EISDIR: "it is a directory",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EBADF: "it is closed",
}


def reason(err: OSError) -> str:
    """Why `err` happened, in words (the errno's, or the library's own message)."""
    if err.errno in _REASONS:
        return _REASONS[err.errno]
    return err.strerror or str(err) or type(err).__name__


class OutputFile:
    """A data file or stream open for appending lines; `-` is stdout when `dash_is_stdout`
    (not for `top --record`, whose stdout is the console: there `-` is a file of that name).

    A FIFO is opened without blocking, so one that nobody reads is an error at once, not a hang.
    """

    def __init__(self, path: str, *, what: str = "file", dash_is_stdout: bool = True) -> None:
        to_stdout = dash_is_stdout and path == "-"
        self.name = "stdout" if to_stdout else path
        self.what = what
        self._owned = not to_stdout
        if not self._owned:
            self.fd = sys.stdout.fileno()
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0), 0o666)
        except OSError as err:
            raise self._error(err) from None
        if hasattr(os, "set_blocking"):
            os.set_blocking(self.fd, True)  # non-blocking only to open a FIFO without a reader
        if stat.S_ISDIR(os.fstat(self.fd).st_mode):  # pragma: no cover - O_WRONLY refuses it
            os.close(self.fd)
            raise self._error(OSError(errno.EISDIR, "is a directory"))

    def _error(self, err: OSError) -> CannotWrite:
        return CannotWrite(f"cannot write the {self.what} {self.name}: {reason(err)}")

    def write_line(self, text: str) -> None:
        """Append `text` and a newline, whole or with a CannotWrite."""
        data = memoryview((text + "\n").encode("utf-8", "surrogateescape"))
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except OSError as err:
            raise self._error(err) from None

    def close(self) -> None:
        if not self._owned or self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        try:
            os.close(fd)
        except OSError as err:  # NFS reports a failed write at close
            raise self._error(err) from None


def locked_update(
    path: Path, change: Callable[[str | None, int | None], str | None], *, new_mode: int = 0o600
) -> None:
    """Change the text file at `path` under its lock: `change` gets the current text and mode
    (None for both when there is no file) and returns the new text, or None to leave the file
    as it is. A new file gets `new_mode`; an existing one keeps its mode.

    A symbolic link is followed (its target is replaced; the link stays). Raises CannotWrite
    when the directory cannot hold the lock or the new file, with the file untouched.
    """
    from filelock import FileLock, Timeout

    try:
        from pathlib import Path  # here: every command imports this module for `reason`

        target = Path(os.path.realpath(path))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = FileLock(target.parent / f".{target.name}.lock", timeout=LOCK_TIMEOUT)
        _refuse_special(path, target)
        with lock:
            try:
                old: str | None
                old, mode = _read_regular(path, target)
            except FileNotFoundError:
                old, mode = None, None
            new = change(old, mode)
            if new is not None:
                _replace(target, new, new_mode if mode is None else mode)
    except Timeout:
        raise CannotWrite(
            f"cannot write {path}: another process held its lock for {LOCK_TIMEOUT:g}s"
        ) from None
    except OSError as err:
        raise CannotWrite(f"cannot write {path}: {reason(err)}") from None


def _refuse_special(path: Path, target: Path) -> None:
    """A FIFO, device or socket is never read or replaced: reading a FIFO waits for a writer
    that never comes, and `/dev/zero` never ends."""
    try:
        found = target.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(found.st_mode):
        raise CannotWrite(f"cannot write {path}: it is not a regular file")


def _read_regular(path: Path, target: Path) -> tuple[str, int | None]:
    """The text and mode of `target`, opened without blocking and checked to be a regular file
    on the open descriptor (it may have been swapped since `_refuse_special` looked)."""
    fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise CannotWrite(f"cannot write {path}: it is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as file:
            text = file.read().decode("utf-8", "surrogateescape")
    finally:
        os.close(fd)
    return text, stat.S_IMODE(found.st_mode)


def _replace(target: Path, text: str, mode: int) -> None:
    import tempfile
    from pathlib import Path

    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:
        directory = os.open(target.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - a directory we just wrote in
        return
    try:
        os.fsync(directory)
    except OSError:  # pragma: no cover - some file systems cannot sync a directory
        pass
    finally:
        os.close(directory)
