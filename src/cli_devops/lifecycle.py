"""One lifecycle for every long-running command (`track`, `top`, `exporter`, `simulate`,
`wait`, `watch`).

SIGTERM (a service manager, `docker stop`, `kill`) and SIGHUP (the terminal closed) become a
`Stopped` exception raised in the main thread, as Ctrl+C becomes KeyboardInterrupt, so the same
`finally` blocks run for all three: the terminal restored, files flushed and closed, listeners
closed. `Stopped` derives from BaseException, so no `except Exception` swallows it.

Exit codes: Ctrl+C is 130 for every command (`top`'s Ctrl+C key too); SIGTERM and SIGHUP are a
requested stop, 0 for the services (`exporter`, `simulate`) as init systems and containers
expect, and 128 + the signal's number (143, 129) for the interactive ones (`track`, `top`), as a
shell reports them.

`run_until_stopped` is the same for a command whose work is one asyncio coroutine (`wait`,
`watch`): Ctrl+C, SIGTERM and SIGHUP cancel the work where it awaits, so its `finally` blocks
close connections and bound what is still in flight, and the caller learns which signal it was.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
RAW_TERMINAL_SIGNALS = (*STOP_SIGNALS, signal.SIGINT)
"""What a full-screen view must catch itself: its terminal is raw, so Ctrl+C is a key, and a
SIGINT that arrives (`kill -INT`, `timeout -s INT`) was taken by the view's own loop for a quit
with exit 0."""


class Stopped(BaseException):
    """The process was asked to stop by `signum` (SIGTERM or SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """What a shell reports for a process the signal ended: 128 + its number."""
        return 128 + self.signum


@contextlib.contextmanager
def ctrl_c_is_a_stop() -> Iterator[None]:
    """Ctrl+C inside is `Stopped(SIGINT)` (exit 130, quietly), after the `finally` blocks inside
    ran, rather than a KeyboardInterrupt that click reports as `Aborted.`."""
    try:
        yield
    except KeyboardInterrupt:
        raise Stopped(signal.SIGINT) from None


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_signals(
    on_stop: Callable[[int], None] | None = None, *, signals: tuple[int, ...] = STOP_SIGNALS
) -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP (or `signals`) call `on_stop(signum)`, or raise
    `Stopped` when no `on_stop` is given. Only the main thread can hear signals; elsewhere this
    does nothing. The previous handlers are put back on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        if on_stop is None:
            _raise(signum, frame)
        else:
            on_stop(signum)

    try:
        for number in signals:
            previous[number] = signal.signal(number, handle)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]


SIGINT = signal.SIGINT


class ReaderGone(Exception):
    """The reader of the command's output went away: the work ends normally."""


def run_until_stopped(work: Coroutine[Any, Any, None]) -> int | None:
    """Run `work` on a new event loop until it returns or Ctrl+C, SIGTERM or SIGHUP cancels
    it; returns the signal's number (None when the work ended by itself or its reader went
    away)."""
    stopped_by: list[int] = []
    try:
        import asyncio  # here: every command imports this module, few run an event loop

        asyncio.run(_until_stopped(work, stopped_by))
    except KeyboardInterrupt:  # Ctrl+C where no handler could be installed (a thread)
        return int(SIGINT)
    except ReaderGone:
        return None
    return stopped_by[0] if stopped_by else None


async def _until_stopped(work: Coroutine[Any, Any, None], stopped_by: list[int]) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)

    def stop(number: int) -> None:
        if not stopped_by:
            stopped_by.append(number)
            task.cancel()

    installed = []
    for number in (SIGINT, *STOP_SIGNALS):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, stop, number)
            installed.append(number)
    try:
        await asyncio.wait({task})
    finally:
        for number in installed:
            loop.remove_signal_handler(number)
    if not task.cancelled():
        task.result()
