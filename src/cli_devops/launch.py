"""The console entry point: `--version` alone is answered before anything else is imported.

Every other invocation goes to the command group (`cli.main`), which imports click and the
commands. `cli_devops --version` needs only the version string, and importing click alone costs
several times a bare interpreter's start-up.
"""

import os
import sys

from cli_devops import __version__


def main() -> None:
    """Run the command line; `--version` on its own prints the version without loading it.

    A stdout that cannot take the line (closed, a full disk, a reader gone) is left to the
    command group, so the outcome is the one every other command has.
    """
    if sys.argv[1:] == ["--version"] and _write(f"cli_devops, version {__version__}\n"):
        return
    started = process_started()
    from cli_devops.cli.main import main as run_cli

    run_cli(started=started)


def process_started() -> float | None:
    """When this process started, as a `time.monotonic()` value (Linux: from /proc, to the
    clock tick), or None where that cannot be read. A deadline counts from it."""
    import time

    try:
        descriptor = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            text = os.read(descriptor, 4096).decode("latin-1")  # no pathlib: it costs start-up
        finally:
            os.close(descriptor)
        fields = text.rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime: clock ticks after boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    if not 0 <= age < 3600:  # a clock that disagrees with /proc: trust neither
        return None
    return time.monotonic() - age


def _write(text: str) -> bool:
    """Write `text` to file descriptor 1 in one call (a short line: one write); False when it
    could not be written whole."""
    if sys.stdout is None:
        return False
    data = text.encode()
    try:
        return os.write(1, data) == len(data)
    except OSError:
        return False
