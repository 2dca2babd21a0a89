"""Exit codes and the exception hierarchy the library raises.

Every error a user can cause or meet is a `CliDevopsError` carrying the exit status it maps to;
`cli.main` is the single place that turns one into a line on stderr (a traceback only with --debug).
"""

from __future__ import annotations

import os
from enum import IntEnum
from typing import ClassVar


class ExitStatus(IntEnum):
    """Process exit codes; documented in the README, relied on by scripts and cron jobs."""

    OK = 0
    FLAGGED = 1
    USAGE = 2
    API_UNREACHABLE = 3
    INCOMPLETE = 4
    INTERNAL_ERROR = 70
    CANNOT_WRITE = 74
    """sysexits' EX_IOERR: a file or stream the tool writes could not take the data (a full
    disk, a FIFO nobody reads, an unwritable path); what was written before stays."""
    INTERRUPTED = 130


class CliDevopsError(Exception):
    """Base of every error meant for the user: `str(err)` is the one line they see."""

    exit_status: ExitStatus = ExitStatus.USAGE


class UsageError(CliDevopsError):
    """A bad option value or argument (for example an unknown service name)."""

    exit_status = ExitStatus.USAGE


class CannotListen(UsageError):
    """A server command could not bind its address (in use, not on this machine, no rights)."""

    def __init__(self, address: str, error: OSError) -> None:
        # getaddrinfo's errors have negative numbers, which os.strerror does not know
        number = error.errno or 0
        reason = os.strerror(number) if number > 0 else (error.strerror or str(error))
        super().__init__(f"cannot listen on {address}: {reason}")


class SettingError(UsageError):
    """A client setting that cannot be used. `setting` names it ("url", "ca_cert") and
    `detail` says what is wrong, so the command-line layer can name its own option."""

    WORDING: ClassVar[dict[str, str]] = {
        "url": "invalid URL{detail}",
        "ca_cert": "CA certificate file {detail}",
        "listen": "invalid address to listen on {detail}",
        "shard": "invalid shard {detail}",
    }

    def __init__(self, setting: str, detail: str) -> None:
        super().__init__(self.WORDING.get(setting, "{detail}").format(detail=detail))
        self.setting = setting
        self.detail = detail


class ApiUnreachable(CliDevopsError):
    """The CPX API could not be reached, or its /servers answer was unusable.

    `kind` says what to check next: "auth" (the API refused the credentials, HTTP 401 or 403),
    "tls" (its certificate is not trusted), "answer" (it answered, but unusably) or "connect"
    (anything else: wrong address, down, timing out), "contexts" (no context of a read of
    every context could be read; each was reported with its own reason) or "prometheus" (the
    fleet was to be read from Prometheus, which the message names), "not_prometheus" (what was
    given as Prometheus answered its query API as no Prometheus does).
    """

    exit_status = ExitStatus.API_UNREACHABLE

    def __init__(self, message: str, *, kind: str = "connect") -> None:
        super().__init__(message)
        self.kind = kind


class IncompleteData(CliDevopsError):
    """--strict was given and at least one instance could not be read."""

    exit_status = ExitStatus.INCOMPLETE


class CannotWrite(CliDevopsError):
    """A file or stream could not be written; the message names it and says why."""

    exit_status = ExitStatus.CANNOT_WRITE


class PayloadError(ValueError):
    """A single CPX answer is not valid; the message is the short reason shown to the user."""
