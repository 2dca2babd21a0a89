"""Changes to the config file (`config set-context`, `use-context`, `delete-context`).

tomlkit keeps comments, key order and formatting of what a change does not touch, and is
imported by these writes only. Every write goes through `files.locked_update` (lock, read,
change, temporary file, fsync, rename), starts from a file `config.load` accepts, and is written
only if it reads back as exactly the intended contexts: a layout this module does not
understand (an inline table of contexts, dotted keys) is refused, never rewritten with
something lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cli_devops.config import (
    MAX_FILE_SIZE,
    Config,
    ConfigError,
    Scalar,
    check_name,
    check_private,
    holds_secret,
    load,
    parse,
)


def set_context(path: Path, name: str, values: Mapping[str, Scalar]) -> bool:
    """Create context `name` or update its keys with `values`; returns whether it was new."""
    check_name(name)
    for key, value in values.items():
        _check_utf8(key, value)
    created = False

    def change(document: Any, config: Config, mode: int | None) -> None:
        nonlocal created
        contexts = _contexts_table(document, config)
        created = name not in contexts
        if created:
            import tomlkit

            contexts[name] = tomlkit.table()
        table = contexts[name]
        if not _is_table(table):
            raise _not_understood(config, f"context {name!r} is not a [contexts.{name}] table")
        for key, value in values.items():
            table[key] = value
        if mode is not None and holds_secret(values):
            check_private(path, mode)

    def expected(before: Config) -> dict[str, dict[str, Scalar]]:
        contexts = _values(before)
        contexts[name] = {**contexts.get(name, {}), **values}
        return contexts

    _update(path, change, expected)
    return created


def _check_utf8(key: str, value: Scalar) -> None:
    """A TOML file is UTF-8: a value holding bytes that are not (a command-line argument or a
    path with an invalid UTF-8 byte arrives as a lone surrogate) could not be written."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            message = f"{key}: not valid UTF-8 text, which a TOML file cannot hold"
            raise ConfigError(message) from None


def use_context(path: Path, name: str) -> None:
    """Make `name` (which must exist) the current context."""

    def change(document: Any, config: Config, mode: int | None) -> None:
        config.context(name)
        document["current-context"] = name

    _update(path, change, _values, current=lambda before: name)


def delete_context(path: Path, name: str) -> bool:
    """Remove context `name`; returns whether it was the current one (then unset)."""
    was_current = False

    def change(document: Any, config: Config, mode: int | None) -> None:
        nonlocal was_current
        config.context(name)
        contexts = _contexts_table(document, config)
        del contexts[name]
        was_current = config.current == name
        if was_current:
            del document["current-context"]

    def expected(before: Config) -> dict[str, dict[str, Scalar]]:
        contexts = _values(before)
        del contexts[name]
        return contexts

    def current(before: Config) -> str | None:
        return None if before.current == name else before.current

    _update(path, change, expected, current=current)
    return was_current


def _values(config: Config) -> dict[str, dict[str, Scalar]]:
    return {name: dict(context.values) for name, context in config.contexts.items()}


def _update(
    path: Path,
    change: Any,
    expected: Any,
    current: Any = lambda before: before.current,
) -> None:
    """Apply `change(document, config, mode)` under the file's lock, and write the result only
    if it reads back as exactly the intended contexts (`expected(before)`) and current context:
    a file laid out in a way the writer does not understand is refused, never rewritten with
    something lost."""
    from cli_devops.files import locked_update

    def rewrite(old: str | None, mode: int | None) -> str:
        import tomlkit

        before = load(path) if old is not None else Config(path)
        document = tomlkit.parse(old) if old is not None else tomlkit.document()
        change(document, before, mode)
        text = tomlkit.dumps(document)
        try:
            after = parse(text, path)
        except ConfigError:
            after = None
        if after is None or _values(after) != expected(before) or after.current != current(before):
            raise _not_understood(before, "its layout is not one this command can edit")
        if len(text.encode("utf-8")) > MAX_FILE_SIZE:  # every later read would refuse it
            raise ConfigError(
                f"{path}: the change would make it larger than {MAX_FILE_SIZE // 1024} KiB, "
                "which no command reads; it was left unchanged"
            )
        return text

    locked_update(path, rewrite)


def _not_understood(config: Config, why: str) -> ConfigError:
    return ConfigError(f"{config.path}: {why}; it was left unchanged, edit it by hand")


def _is_table(item: Any) -> bool:
    import tomlkit.items

    return isinstance(item, tomlkit.items.Table)


def _contexts_table(document: Any, config: Config) -> Any:
    import tomlkit

    if "contexts" not in document:
        document["contexts"] = tomlkit.table(is_super_table=True)
    contexts = document["contexts"]
    if not _is_table(contexts):
        raise _not_understood(config, "'contexts' is not written as [contexts.NAME] tables")
    return contexts
