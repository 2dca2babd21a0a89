"""Named contexts: the TOML config file that holds one set of global options per CPX environment.

    current-context = "prod"
    [contexts.prod]
    cp-url = "http://10.0.0.5:8080"
    token = "..."            # the file must then be readable by its owner only
    cpu-threshold = 85       # any global option, spelled as on the command line without dashes

This module reads and checks the file's shape (tomllib) and writes
it back (`config_edit`).
Which keys exist and what their values mean is the command-line layer's business: it knows the
options, their types and their defaults, and reports a bad value through `Config.invalid`.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cli_devops.errors import UsageError
from cli_devops.reading import NotRegularFile, read_regular
from cli_devops.redaction import REDACTED, redact

APP_NAME = "cli_devops"
FILE_NAME = "config.toml"
MAX_FILE_SIZE = 1024 * 1024
SECRET_KEYS = frozenset({"token", "prometheus-token"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")
_TOML_POSITION = re.compile(r"\s*\(at line ([0-9]+), column [0-9]+\)$")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
Scalar = str | int | float | bool


class ConfigError(UsageError):
    """The config file cannot be used; the message names the file (and line and key if known)."""


def default_path(environ: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/cli_devops/config.toml`, or `~/.config/...` when it is unset or relative
    (as the XDG base directory specification says to treat a relative value)."""
    base = environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / APP_NAME / FILE_NAME


def shown(key: str, value: Scalar) -> Scalar:
    """`value` as it may be printed: a secret key's value redacted, and any string's URL user
    information and credentials (`redaction.redact`)."""
    if key in SECRET_KEYS:
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    return value


def holds_secret(values: Mapping[str, Scalar]) -> bool:
    return any(
        key in SECRET_KEYS or (isinstance(value, str) and redact(value) != value)
        for key, value in values.items()
    )


def check_name(name: str) -> str:
    """A context name: a letter or digit, then letters, digits, `_ . @ : -` (64 at most)."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid context name {name!r}: use letters, digits and _ . @ : - (64 at most)"
        )
    return name


@dataclass(frozen=True)
class Context:
    name: str
    values: dict[str, Scalar]
    lines: dict[str, int] = field(default_factory=dict, repr=False)
    """Line of each key in the file (best effort; 0 when not found)."""
    header_line: int = 0

    def __repr__(self) -> str:
        values = {key: shown(key, value) for key, value in self.values.items()}
        return f"Context(name={self.name!r}, values={values!r})"


@dataclass(frozen=True)
class Config:
    """One config file as read. A file that does not exist reads as no contexts (`exists` False)."""

    path: Path
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)
    exists: bool = False
    current_line: int = 0

    def known(self) -> str:
        return ", ".join(sorted(self.contexts)) or "none"

    def context(self, name: str) -> Context:
        """The context called `name`; ConfigError listing the known ones otherwise."""
        found = self.contexts.get(name)
        if found is None:
            where = str(self.path) if self.exists else f"{self.path} (no such file)"
            raise ConfigError(
                f"no context named {name!r} in {where}; known contexts: {self.known()}"
            )
        return found

    def selected(self, name: str | None) -> Context | None:
        """The context to use: `name` if given, else the file's current-context, else none."""
        if name is not None:
            return self.context(name)
        if self.current is None:
            return None
        if self.current not in self.contexts:
            raise ConfigError(
                f"{self.path}, line {self.current_line}: current-context {self.current!r} is not "
                f"defined; known contexts: {self.known()}"
            )
        return self.contexts[self.current]

    def invalid(self, context: Context, key: str, reason: str) -> ConfigError:
        """The one error for a bad key or value, naming file, line, context and key."""
        line = context.lines.get(key) or context.header_line
        where = f"{self.path}, line {line}" if line else str(self.path)
        return ConfigError(f"{where}: context {context.name!r}, key {key!r}: {reason}")


def load(path: Path, *, required: bool = False) -> Config:
    """Read and check the file's shape. A missing file is an empty Config unless `required`.

    Refuses a file that holds a token and is readable by group or others, as ssh refuses such
    key files: the token is never printed, the fix is.
    """
    try:
        data, mode = read_regular(path, MAX_FILE_SIZE)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return Config(path)
    except NotRegularFile:
        raise ConfigError(f"config file {path} is not a regular file") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None
    if len(data) > MAX_FILE_SIZE:
        raise ConfigError(f"config file {path} is larger than {MAX_FILE_SIZE // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start})") from None
    config = parse(text, path)
    if any(holds_secret(context.values) for context in config.contexts.values()):
        check_private(path, mode)
    return config


def check_private(path: Path, mode: int) -> None:
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(
            f"config file {path} holds a token and is readable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}"
        )


def parse(text: str, path: Path) -> Config:
    """The Config in `text` (read from `path`, named in errors)."""
    import tomllib

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        position = _TOML_POSITION.search(str(err))
        reason = str(err)[: position.start()] if position else str(err)
        at = f", line {position.group(1)}" if position else ""
        raise ConfigError(f"{path}{at}: not valid TOML: {reason}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    lines = _key_lines(text)
    for key in document:
        if key not in ("current-context", "contexts"):
            line = lines.get(((), key), 0)
            where = f"{path}, line {line}" if line else str(path)
            raise ConfigError(f"{where}: unknown key {key!r}; expected current-context, contexts")
    current = document.get("current-context")
    if current is not None and not isinstance(current, str):
        line = lines.get(((), "current-context"), 0)
        raise ConfigError(f"{path}, line {line}: key 'current-context': must be a string")
    tables = document.get("contexts", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: key 'contexts': must be a table of contexts")
    contexts = {}
    for name, table in tables.items():
        header = lines.get((("contexts",), name), 0)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}, line {header}: context {name!r}: must be a table")
        values: dict[str, Scalar] = {}
        key_lines: dict[str, int] = {}
        for key, value in table.items():
            key_lines[key] = lines.get((("contexts", name), key), 0)
            if not isinstance(value, (str, int, float, bool)):
                line = key_lines[key] or header
                raise ConfigError(
                    f"{path}, line {line}: context {name!r}, key {key!r}: must be a string, "
                    f"number or true/false, not a {_toml_type(value)}"
                )
            values[key] = value
        contexts[name] = Context(name, values, key_lines, header)
    return Config(path, current, contexts, True, lines.get(((), "current-context"), 0))


def _toml_type(value: object) -> str:
    if isinstance(value, dict):
        return "table"
    return "array" if isinstance(value, list) else type(value).__name__


_HEADER = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_ASSIGN = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_PART = re.compile(_KEY_PART)


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(
        json.loads(part) if part[0] == '"' else part.strip("'") for part in _PART.findall(text)
    )


def _key_lines(text: str) -> dict[tuple[tuple[str, ...], str], int]:
    """Line of each key, as ((table path), key) -> line number: enough to point at a bad key.

    A best-effort scan (tomllib keeps no positions); a key it cannot place gets line 0 and the
    error names the file and key only.
    """
    found: dict[tuple[tuple[str, ...], str], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            header = _HEADER.match(line)
            if header is not None:
                path = _dotted(header.group(1))
                if path:
                    found.setdefault((path[:-1], path[-1]), number)
                    table = path
                continue
            assign = _ASSIGN.match(line)
            if assign is not None:
                keys = table + _dotted(assign.group(1))
                for depth in range(len(table), len(keys)):
                    found.setdefault((keys[:depth], keys[depth]), number)
        except ValueError:  # a quoted key json cannot read: leave it unplaced
            continue
    return found


def render(config: Config) -> str:
    """The file's settings as TOML with every secret shown as `<redacted>` (for `config view`).

    Strings are written with JSON escapes, which TOML's basic strings share, so control
    characters in a value cannot reach the terminal.
    """
    lines = []
    if config.current is not None:
        lines.append(f"current-context = {_string(config.current)}")
    for name in sorted(config.contexts):
        if lines:
            lines.append("")
        lines.append(f"[contexts.{_key(name)}]")
        for key, value in config.contexts[name].values.items():
            lines.append(f"{_key(key)} = {_value(shown(key, value))}")
    return "\n".join(lines) + ("\n" if lines else "")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    return json.dumps(text)


def _value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _string(value)
