"""Named contexts on the command line: which config file and context a run uses, and the
context's keys checked and converted by the very options they stand for.

A key is a global option spelled without its dashes (`cp-url`, `cpu-threshold`, `timeout`), and
its value is checked by that option's own type, so a context accepts exactly what the command
line accepts (`timeout = "1m30s"` as `--timeout 1m30s`), with the same defaults behind it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from cli_devops.config import Config, ConfigError, Context, default_path, load

NOT_IN_CONTEXTS = frozenset({"config", "context", "at"})
"""Global options that choose the context, so cannot be set by one, and `--at`, which is about
one run."""
PATH_KEYS = frozenset({"ca-cert"})
"""Keys naming a file: relative to the config file's directory, as kubeconfig does."""


@dataclass(frozen=True)
class Selected:
    """The context a run uses, its values by option name, and where each came from."""

    config: Config
    context: Context
    values: Mapping[str, Any]

    def given_as(self, key: str) -> str:
        return f"{key} of context {self.context.name!r}"


def config_path(given: str | None) -> tuple[Path, bool]:
    """The config file to read, and whether it was named (then it must exist)."""
    if given:
        return home_expanded(given, "config file"), True
    return default_path(os.environ), False


def home_expanded(path: str, what: str) -> Path:
    """`path` with a leading `~` or `~user` expanded; ConfigError when there is no such home
    (`~nobody-here/x`), where pathlib raises RuntimeError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        user = path[1:].split("/", 1)[0]
        raise ConfigError(f"{what} {path!r}: no home directory for user {user!r}") from None


def read_config(given: str | None) -> Config:
    path, named = config_path(given)
    return load(path, required=named)


def select(
    config_file: str | None,
    context_name: str | None,
    options: Mapping[str, click.Option],
    config: Config | None = None,
) -> Selected | None:
    """The context chosen by `context_name`, else the file's current-context, else None.

    `options` maps each key (`cp-url`) to its option; every key of the context is checked, even
    those the command does not use, so a mistake shows at once, not on some later command.
    `config`, when given, is the file already read (`--all-contexts` reads it once).
    """
    if config is None:
        config = read_config(config_file)
    context = config.selected(context_name)
    if context is None:
        return None
    return Selected(config, context, convert(config, context, options))


def convert(
    config: Config, context: Context, options: Mapping[str, click.Option]
) -> dict[str, Any]:
    """The context's values by option name (`cp_url`), converted by each option's type."""
    known = ", ".join(sorted(key for key in options if key not in NOT_IN_CONTEXTS))
    values: dict[str, Any] = {}
    for key, given in context.values.items():
        raw = given
        option = options.get(key)
        if option is None or key in NOT_IN_CONTEXTS:
            raise config.invalid(context, key, f"not a global option; known keys: {known}")
        if option.is_flag:
            if not isinstance(raw, bool):
                raise config.invalid(context, key, "must be true or false")
            values[str(option.name)] = raw
            continue
        if isinstance(raw, bool):
            raise config.invalid(context, key, f"must be a {option.type.name}, not true/false")
        if key in PATH_KEYS and isinstance(raw, str):
            try:
                raw = str(config.path.parent / home_expanded(raw, "path"))
            except ConfigError as err:
                raise config.invalid(context, key, str(err)) from None
        strings = (click.types.StringParamType, click.Path)
        if isinstance(option.type, strings) and not isinstance(raw, str):
            raise config.invalid(context, key, "must be a string")
        if (
            isinstance(option.type, click.types.IntParamType)
            and isinstance(raw, float)
            and not raw.is_integer()
        ):  # click would truncate it; the command line refuses it
            raise config.invalid(context, key, f"{raw!r} is not a whole number")
        ctx = click.Context(click.Command("config"))
        try:
            value = option.type_cast_value(ctx, raw)
            if option.callback is not None:
                value = option.callback(ctx, option, value)
        except click.BadParameter as err:
            raise config.invalid(context, key, err.message) from None
        values[str(option.name)] = value
    return values


def typed(ctx: click.Context, name: str) -> Any:
    """A global option given so far, after the command or before it, or by its variable."""
    context: click.Context | None = ctx
    while context is not None:
        if name in context.params:
            source = context.get_parameter_source(name)
            if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
                return context.params[name]
        context = context.parent
    return None


def context_names(config_file: str | None) -> list[str]:
    """The context names of the file, for completion: nothing when it cannot be read, and
    never a name a shell would split or a terminal would obey (a hand-edited file may hold one)."""
    try:
        names = read_config(config_file).contexts
        return sorted(
            name for name in names if name.isprintable() and not any(c.isspace() for c in name)
        )
    except Exception:  # completion must never fail the shell; it offers nothing instead
        return []
