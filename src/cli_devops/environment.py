"""The outside world as a parameter: streams, terminal facts and the clock.

Commands receive an `Environment` instead of touching `sys.stdout` or `time` directly, so tests
can hand them a StringIO, a fake terminal width or an injected clock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from cli_devops.errors import CannotWrite
from cli_devops.files import reason
from cli_devops.redaction import redact
from cli_devops.text import terminal_safe


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Environment:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO | None = None
    """Read only for key presses while a live view owns the terminal; None: no keys."""
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    color: bool = False
    width: int = 100
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utc_now
    started: float | None = None
    """When the run began (a `time.monotonic()` value: the process's start for a command run
    as a process), from which a one-shot command's deadline counts; None: from its read."""
    stdout_closed: bool = False
    """True once the reader of stdout went away (`| head`): data output then stops quietly."""
    _held: deque[str] | None = field(default=None, init=False, repr=False)
    _dropped: int = field(default=0, init=False, repr=False)

    @classmethod
    def from_system(cls, *, no_color: bool = False, started: float | None = None) -> Environment:
        """The real process environment; colour only on a terminal and never with NO_COLOR set.
        `started`: when the run began (see `process_started`)."""
        isatty = sys.stdout.isatty()
        size = shutil.get_terminal_size((100, 40))
        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin=sys.stdin,
            stdout_isatty=isatty,
            stderr_isatty=sys.stderr.isatty(),
            color=isatty and not no_color and not os.environ.get("NO_COLOR"),
            width=size.columns,
            started=started,
        )

    def warn(self, message: str) -> None:
        """A diagnostic line on stderr (never on stdout, which carries data).

        Made terminal-safe and redacted here, since a message may quote what the API sent or
        a URL with credentials.
        """
        line = f"cli_devops: {terminal_safe(redact(message))}"
        if self._held is None:
            print(line, file=self.stderr)
            return
        if len(self._held) == self._held.maxlen:
            self._dropped += 1
        self._held.append(line)

    @contextlib.contextmanager
    def writing_data(self) -> Iterator[None]:
        """Write data to stdout and flush it. A reader that went away (`cmd | head -1`) ends
        the writing quietly, `stdout_closed` set, so the command still exits with the status
        its result has (0, or 1 for flagged services), not with a broken-pipe error. Any other
        failure (a full disk, an I/O error) is CannotWrite, exit 74."""
        try:
            yield
            self.stdout.flush()
        except BrokenPipeError:
            self.stdout_closed = True
            _discard_output(self.stdout)
        except OSError as err:
            self.stdout_closed = True
            _discard_output(self.stdout)
            raise CannotWrite(f"cannot write to stdout: {reason(err)}") from None

    @contextlib.contextmanager
    def holding_warnings(self, keep: int = 1000) -> Iterator[None]:
        """Hold `warn` lines while something else owns the terminal (the live view of `track`),
        then print them, the last `keep` at most, once it is given back."""
        self._held, self._dropped = deque(maxlen=keep), 0
        try:
            yield
        finally:
            held, dropped = self._held, self._dropped
            self._held = None
            if dropped:
                print(f"cli_devops: ({dropped} earlier lines not kept)", file=self.stderr)
            for line in held:
                print(line, file=self.stderr)


def _discard_output(stream: TextIO) -> None:
    """Point a stream whose reader went away at /dev/null, so what is still buffered (and the
    interpreter's flush at exit) goes nowhere instead of failing again."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
