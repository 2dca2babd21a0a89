"""The subcommands of `cli_devops config`: the named contexts, kubectl-style (get-contexts,
current-context, use-context, set-context, delete-context, view). Reading and writing the file is
`config.py`'s job; this module only parses options and prints. `config_group.py` loads it when a
subcommand is asked for, so `--help` does not pay for it."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli_devops.cli.options import GLOBALS, GlobalValues, global_options
from cli_devops.errors import ExitStatus, UsageError
from cli_devops.text import terminal_safe

if TYPE_CHECKING:  # pathlib is imported by the subcommands that run, not by --help
    from pathlib import Path

F = TypeVar("F", bound=Callable[..., Any])

NOT_SETTABLE = frozenset({"config", "context", "debug", "at"})
"""Global options set-context does not take: those that pick the file and the context, and
--debug and --at (they are about one run, and set-context takes --debug for itself)."""


@click.command("get-contexts")
@global_options("config")
def get_contexts(options: GlobalValues) -> int:
    """List the contexts; the current one is marked with *."""
    from cli_devops.cli.contexts import config_path, read_config
    from cli_devops.config import shown

    config = read_config(options["config"])
    rows = [
        (
            "*" if name == config.current else "",
            terminal_safe(name),
            terminal_safe(str(shown("cp-url", config.contexts[name].values.get("cp-url", "")))),
        )
        for name in sorted(config.contexts)
    ]
    if not rows:
        click.echo(f"No contexts in {config_path(options['config'])[0]}.", err=True)
        return ExitStatus.OK
    widths = [max(len(title), *(len(row[i]) for row in rows)) for i, title in enumerate(TITLES)]
    for row in (TITLES, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        )
    return ExitStatus.OK


TITLES = ("CURRENT", "NAME", "CP-URL")


@click.command("current-context")
@global_options("config")
def current_context(options: GlobalValues) -> int:
    """Print the name of the current context."""
    from cli_devops.cli.contexts import read_config

    config = read_config(options["config"])
    if config.current is None:
        raise UsageError(f"no current context is set in {config.path}")
    click.echo(terminal_safe(config.current))
    return ExitStatus.OK


@click.command("use-context")
@click.argument("name", shell_complete=lambda ctx, param, incomplete: _complete(ctx, incomplete))
@global_options("config")
def use_context(options: GlobalValues, name: str) -> int:
    """Make NAME the current context."""
    from cli_devops import config_edit

    config_edit.use_context(_path(options), name)
    click.echo(f"Switched to context {terminal_safe(name)!r}.")
    return ExitStatus.OK


@click.command("delete-context")
@click.argument("name", shell_complete=lambda ctx, param, incomplete: _complete(ctx, incomplete))
@global_options("config")
def delete_context(options: GlobalValues, name: str) -> int:
    """Delete context NAME (and unset it as the current one)."""
    from cli_devops import config_edit

    path = _path(options)
    was_current = config_edit.delete_context(path, name)
    click.echo(f"Deleted context {terminal_safe(name)!r} from {path}.")
    if was_current:
        click.echo("It was the current context; none is set now.", err=True)
    return ExitStatus.OK


def _settable_options(func: F) -> F:
    """Every global option but those in NOT_SETTABLE, with no default and no environment
    variable (only what is typed is written), flags as --flag/--no-flag."""
    for option in reversed(GLOBALS):
        if option.name in NOT_SETTABLE:
            continue
        attrs = {
            key: value
            for key, value in option.attrs.items()
            if key not in ("envvar", "default", "show_default", "is_flag")
        }
        if "help" in attrs:
            attrs["help"] = re.sub(_NOT_FROM_ENV, "", attrs["help"])
        flag = option.flag
        if option.attrs.get("is_flag"):
            negative = f"--{flag[5:]}" if flag.startswith("--no-") else f"--no-{flag[2:]}"
            flag = f"{flag}/{negative}"
        func.__click_params__ = [  # type: ignore[attr-defined]
            *getattr(func, "__click_params__", []),
            click.Option([flag], default=None, **attrs),
        ]
    return func


_NOT_FROM_ENV = r" \(env [A-Z_]+(?:, preferred)?\)"
"""set-context writes what is typed only: its options' help does not name a variable."""


@click.command("set-context")
@click.argument("name")
@click.option("--use", is_flag=True, help="Also make it the current context.")
@_settable_options
@global_options("config")
def set_context(options: GlobalValues, name: str, use: bool, **settings: Any) -> int:
    """Create context NAME, or change the keys given; the global options given here are written
    to it (spelled without dashes: --cp-url becomes cp-url).

    A token is written only to a file readable by its owner alone (a new file is);
    `--token -` reads it from stdin, keeping it out of shell history.
    """
    from cli_devops import config, config_edit
    from cli_devops.cli.make_config import check_urls

    check_urls(settings, lambda name: "--" + name.replace("_", "-"))
    path = _path(options)
    values: dict[str, config.Scalar] = {}
    for option in GLOBALS:
        value = settings.get(option.name)
        if value is None:
            continue
        if option.name == "ca_cert":
            value = os.path.realpath(value)
        if option.name in ("token", "prometheus_token") and value == "-":
            value = _token_from_stdin(option.flag)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        values[option.flag[2:]] = value
    created = config_edit.set_context(path, name, values)
    verb = "created" if created else "modified"
    click.echo(f"Context {terminal_safe(name)!r} {verb} in {path}.")
    if use:
        config_edit.use_context(path, name)
        click.echo(f"Switched to context {terminal_safe(name)!r}.")
    return ExitStatus.OK


@click.command("view")
@global_options("config")
def view(options: GlobalValues) -> int:
    """Print the contexts as TOML, tokens shown as <redacted>."""
    from cli_devops import config
    from cli_devops.cli.contexts import config_path, read_config

    path = config_path(options["config"])[0]
    if not path.exists():  # a named file that is missing is an error in read_config
        read_config(options["config"])
        click.echo(
            f"No config file: there is none at {terminal_safe(str(path))} "
            "(cli_devops config set-context NAME --cp-url URL creates it).",
            err=True,
        )
        return ExitStatus.OK
    click.echo(config.render(read_config(options["config"])), nl=False)
    return ExitStatus.OK


def _token_from_stdin(flag: str) -> str:
    """`--token -`: the token from the first line of stdin, out of shell history and `ps`."""
    line = sys.stdin.readline(4096).strip()
    if not line or not all("!" <= char <= "~" for char in line):
        raise click.BadParameter(
            "the line read from stdin must be visible ASCII characters only (no spaces)",
            param_hint=f"'{flag}'",
        )
    return line


def _path(options: GlobalValues) -> Path:
    from cli_devops.cli.contexts import config_path

    return config_path(options["config"])[0]


def _complete(ctx: click.Context, incomplete: str) -> list[click.shell_completion.CompletionItem]:
    from click.shell_completion import CompletionItem

    from cli_devops.cli.contexts import context_names, typed

    given = typed(ctx, "config") or os.environ.get("CPX_CONFIG") or None
    return [CompletionItem(name) for name in context_names(given) if name.startswith(incomplete)]


COMMANDS = (get_contexts, current_context, use_context, set_context, delete_context, view)
