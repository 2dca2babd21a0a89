"""The `cli_devops` command group, and `run`: the one place where an outcome becomes an exit
code and an error becomes one line on stderr (a traceback only with --debug)."""

from __future__ import annotations

import contextlib
import errno
import gc
import io
import os
import sys
import time
from collections.abc import MutableMapping
from typing import Any, ClassVar, TextIO

import click

from cli_devops import __version__
from cli_devops.cli import acting, console, fleet, servers
from cli_devops.cli.completion import COMPLETE_VAR, completion, line_completion
from cli_devops.cli.config_group import config_group
from cli_devops.cli.options import (
    GIVEN_BEFORE,
    RUN,
    before_command_options,
    given_on_command_line,
    not_taken,
)
from cli_devops.cli.options_page import options_page
from cli_devops.errors import (
    ApiUnreachable,
    CannotWrite,
    CliDevopsError,
    ExitStatus,
    IncompleteData,
    SettingError,
)
from cli_devops.files import reason
from cli_devops.lifecycle import Stopped
from cli_devops.redaction import redact
from cli_devops.text import terminal_safe


class _Group(click.Group):
    """A command group that also answers to the aliases in ALIASES (not listed in --help)."""

    ALIASES: ClassVar[dict[str, str]] = {"service-track": "track"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))

    def _main_shell_completion(
        self, ctx_args: MutableMapping[str, Any], prog_name: str, complete_var: str | None = None
    ) -> None:
        """Click reads the shell's COMP_WORDS and COMP_CWORD without a check: a missing one or
        a COMP_CWORD that is not a number ended in exit 70. A completion the shell's variables
        do not describe offers nothing and exits 1, as click does for an unknown shell."""
        try:
            super()._main_shell_completion(ctx_args, prog_name, complete_var)
        except (KeyError, ValueError, IndexError):
            sys.exit(1)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@before_command_options
@click.version_option(__version__, "--version", prog_name="cli_devops")
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """See the health of your CPX fleet: instances, services, under-replicated services,
    and one service over time.

    \b
    Global options may also be given after the command:
      cli_devops services --cp-url http://10.0.0.5:8080 -o json
    Try it without a server:
      cli_devops --demo services
      cli_devops --demo unhealthy-services
    """
    given = given_on_command_line(ctx, options)
    ctx.meta[GIVEN_BEFORE] = given
    RUN.debug = bool(given.get("debug"))


for _command in (
    fleet.services,
    fleet.status,
    fleet.unhealthy_services,
    fleet.track,
    acting.wait,
    acting.watch,
    console.top,
    servers.exporter,
    servers.simulate,
    config_group,
    completion,
    options_page,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None, started: float | None = None) -> None:
    """Console entry point: run the CLI and map every outcome to an exit code. `started`: when
    the process started (`time.monotonic()`), from which a deadline counts."""
    # Each API request allocates many short-lived objects that reference counting frees; the
    # cyclic collector's default pace (a pass every 700 allocations) cost 8% of a 10,000-instance
    # run. A process-wide policy, so it is set here, not in the library.
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    _standard_streams_open()
    sys.stderr = DiagnosticStream(sys.stderr)
    if COMPLETE_VAR in os.environ:  # the shell asks for completions
        line_completion()
    _stdout_shows_every_character()
    status = run(argv, started=started)
    # Nothing is left to collect: the interpreter's final full collection would still walk
    # every object of a large fleet (18 ms of a 10,000-instance run) before exiting.
    gc.freeze()
    sys.exit(status)


def run(argv: list[str] | None = None, started: float | None = None) -> int:
    """Run the command line; a deadline counts from `started` (a `time.monotonic()` value,
    the process's start), else from this call."""
    RUN.debug = False
    RUN.started = time.monotonic() if started is None else started
    try:
        result = cli.main(args=argv, prog_name="cli_devops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return ExitStatus.INTERRUPTED
    except click.ClickException as err:
        _fail(_click_message(err))
        return ExitStatus.USAGE
    except CliDevopsError as err:
        _fail(_with_hint(err))
        if isinstance(err, CannotWrite):
            _flush_or_silence_stdout()
        return err.exit_status
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except Stopped as stopped:
        return stopped.exit_status
    except BrokenPipeError:
        _silence_stdout()
        return ExitStatus.OK
    except OSError as err:
        if err.errno == errno.EPIPE:
            _silence_stdout()
            return ExitStatus.OK
        if err.errno in _WRITE_ERRORS:  # a write to stdout outside a command's data block
            _silence_stdout()
            _fail(f"cannot write to stdout: {reason(err)}")
            return ExitStatus.CANNOT_WRITE
        _fail(f"unexpected error: {type(err).__name__}: {err} (rerun with --debug for details)")
        return ExitStatus.INTERNAL_ERROR
    except Exception as err:  # the one catch-all: the user gets a line, not a traceback
        _fail(f"unexpected error: {type(err).__name__}: {err} (rerun with --debug for details)")
        return ExitStatus.INTERNAL_ERROR
    if isinstance(result, int):
        return result
    return ExitStatus.OK


_API_HINTS = {
    "auth": " Check --token (or CPX_TOKEN).",
    "tls": " Check --ca-cert (or --insecure for testing).",
    "connect": " Check --cp-url (or CPX_URL), or try --demo to use the bundled simulator.",
    "not_prometheus": " Is it the CPX API? That is given with --cp-url, not --prometheus-url.",
}


_SETTING_FLAGS = {
    "listen": "--web.listen-address",
    "shard": "--shard",
    "telemetry_path": "--web.telemetry-path",
    "max_requests": "--web.max-requests",
}


def _with_hint(err: CliDevopsError) -> str:
    """The library's message, plus the option that led to it where the user may not know."""
    message = str(err)
    if isinstance(err, IncompleteData):
        return f"{message} and --strict was given"
    if isinstance(err, ApiUnreachable):
        return f"{message}{_API_HINTS.get(err.kind, '')}"
    if isinstance(err, SettingError) and err.setting == "ca_cert":
        return f"--ca-cert {err.detail}"
    if isinstance(err, SettingError) and err.setting in _SETTING_FLAGS:
        return f"invalid {_SETTING_FLAGS[err.setting]} {err.detail}"
    return message


def _click_message(err: click.ClickException) -> str:
    """A usage error of click's in the one error format, with where to read more; a global
    option given to a command that does not take it names the commands that do."""
    better = not_taken(err) if isinstance(err, click.NoSuchOption) else None
    if better is not None:
        return str(better)
    message = " ".join(err.format_message().split())
    ctx = getattr(err, "ctx", None)
    if isinstance(err, click.UsageError) and ctx is not None:
        return f"{message} (see '{ctx.command_path} --help')"
    return message


def _fail(message: str) -> None:
    if RUN.debug:
        import traceback

        for line in traceback.format_exc().splitlines():  # it quotes URLs and answers too
            click.echo(terminal_safe(redact(line)), err=True)
    click.echo(f"cli_devops: error: {terminal_safe(redact(message))}", err=True)


_WRITE_ERRORS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EIO", "EDQUOT", "EFBIG", "EBADF")
    if hasattr(errno, name)
)


def _standard_streams_open() -> None:
    """A standard stream the caller closed (`2>&-`) is pointed at /dev/null: its descriptor
    would otherwise be reused by the next file or socket opened, and a diagnostic written into
    it; and a closed stderr must not change the result."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            # A closed stdout is not a place for data: /dev/null opened for reading only keeps
            # the descriptor taken and makes each write fail (EBADF), so a command that has data
            # to print exits 74 instead of 0 with its output lost.
            null = os.open(os.devnull, os.O_RDONLY if fd == 1 else os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def _flush_or_silence_stdout() -> None:
    """After a write failed, flush what stdout still holds, or, if stdout is what failed,
    silence it: the interpreter's own flush at exit would fail again (exit 120)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        _silence_stdout()


class DiagnosticStream(io.TextIOBase):
    """stderr, which carries diagnostics only: when it cannot be written (`2>/dev/full`, a
    reader that went away) the diagnostics are dropped and the command goes on to its own
    result. A failed write to it used to escape every handler (exit 1 for any command, and
    'cannot write to stdout' for a stdout that was fine)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            self._stream.write(text)
            self._stream.flush()
        except OSError:
            self._give_up()
        return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._give_up()

    def _give_up(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._stream.errors


def _stdout_shows_every_character() -> None:
    """A character stdout's encoding lacks (a service named `Café` under `LANG=C` or
    `PYTHONIOENCODING=ascii`) is written as its escape (`Caf\\xe9`), as Python does on stderr,
    instead of ending the run with a UnicodeEncodeError (exit 70). JSON is ASCII already."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and sys.stdout.errors == "strict":
        reconfigure(errors="backslashreplace")


def _silence_stdout() -> None:
    """After the reader of a pipe went away, stop Python from failing again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
