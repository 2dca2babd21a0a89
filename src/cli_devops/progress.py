"""The transient progress line of a long read: instances read of the total, failures and
retries so far, on stderr, erased when the read ends.

Shown only when stderr is a terminal, the output is a table, `--debug` is off (its request lines
are the progress then), and only once a read has taken `DELAY` seconds: a quick read shows
nothing. rich is imported only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cli_devops.environment import Environment
from cli_devops.text import plural

if TYPE_CHECKING:
    from rich.live import Live

DELAY = 1.0


class Progress(Protocol):
    """What a read reports (`cli_devops.client.ReadProgress`)."""

    listing_attempts: int
    listed: int | None
    read: int
    failed: int
    retries: int


def describe(progress: Progress, elapsed: float) -> str:
    """The line: `read 1,200 of 10,000 instances, 3 failed, 5 retries (4s)`."""
    seconds = f"({elapsed:.0f}s)"
    if progress.listed is None:
        attempt = progress.listing_attempts
        again = f", attempt {attempt}" if attempt > 1 else ""
        return f"reading the list of instances{again}… {seconds}"
    noun = "instance" if progress.listed == 1 else "instances"
    line = f"read {progress.read:,} of {progress.listed:,} {noun}"
    if progress.failed:
        line += f", {progress.failed:,} failed"
    if progress.retries:
        line += f", {plural(progress.retries, 'retry', 'retries')}"
    return f"{line} {seconds}"


class ProgressLine:
    """`update(progress)` as often as convenient; `close()` erases the line (idempotent)."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.started = env.monotonic()
        self._live: Live | None = None

    def update(self, progress: Progress) -> None:
        elapsed = self.env.monotonic() - self.started
        if elapsed < DELAY:
            return
        from rich.text import Text

        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.env.stderr, highlight=False, no_color=not self.env.color)
            if not console.is_terminal:
                return
            self._live = Live(console=console, transient=True, auto_refresh=False)
            self._live.start()
        self._live.update(Text(describe(progress, elapsed), style="dim"), refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
