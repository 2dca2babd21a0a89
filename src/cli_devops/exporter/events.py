"""The exporter's log: one line per event on stderr, in logfmt or JSON, as node_exporter's
`--log.level` and `--log.format` write it.

Every value is made one printable line here (quotes, backslashes, newlines and other control
characters escaped), since an event may quote what CPX or a scraper sent: a hostile answer
cannot forge a second log line or move a terminal's cursor.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from cli_devops.settings import DEFAULT_LOG_FORMAT as DEFAULT_FORMAT
from cli_devops.settings import DEFAULT_LOG_LEVEL as DEFAULT_LEVEL
from cli_devops.settings import LOG_FORMATS as FORMATS
from cli_devops.settings import LOG_LEVELS as LEVELS


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as the exporter toolkit writes `ts`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _escaped(char: str) -> str:
    if char == '"':
        return '\\"'
    if char == "\\":
        return "\\\\"
    if char == "\n":
        return "\\n"
    if char.isprintable():
        return char
    units = char.encode("utf-16-be", "surrogatepass")  # JSON's escapes: UTF-16 code units
    return "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
    )


def logfmt_value(value: object) -> str:
    """A value as logfmt writes it: bare when it is a plain word, else quoted with JSON's
    string escapes (so a quoted value reads back with any JSON parser)."""
    text = str(value)
    if text and all(c.isprintable() and c not in ' "=\\' for c in text):
        return text
    return '"' + "".join(_escaped(c) for c in text) + '"'


def logfmt_key(key: str) -> str:
    """Keys are ours, but kept to logfmt's key characters all the same."""
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in key) or "_"


@dataclass
class EventLog:
    """Writes events at or above `level` to `stream`, one line each, whole lines only
    (scrape threads log concurrently)."""

    stream: TextIO | None
    """None for no log at all."""
    level: str = DEFAULT_LEVEL
    format: str = DEFAULT_FORMAT
    clock: Callable[[], datetime.datetime] = utc_now
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"log level {self.level!r} is not one of {', '.join(LEVELS)}")
        if self.format not in FORMATS:
            raise ValueError(f"log format {self.format!r} is not one of {', '.join(FORMATS)}")

    def enabled(self, level: str) -> bool:
        return self.stream is not None and LEVELS.index(level) >= LEVELS.index(self.level)

    def line(self, level: str, msg: str, fields: dict[str, object]) -> str:
        """The event as one line (no newline)."""
        record: dict[str, object] = {"ts": timestamp(self.clock()), "level": level, "msg": msg}
        for key, value in fields.items():
            record.setdefault(key, value)
        if self.format == "json":
            return json.dumps(
                {key: value if isinstance(value, (int, float)) else str(value)
                 for key, value in record.items()},
                ensure_ascii=True,
            )  # fmt: skip
        return " ".join(f"{logfmt_key(k)}={logfmt_value(v)}" for k, v in record.items())

    def log(self, level: str, msg: str, **fields: object) -> None:
        if not self.enabled(level):
            return
        text = self.line(level, msg, fields) + "\n"
        assert self.stream is not None
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not take a scrape down

    def debug(self, msg: str, **fields: object) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: object) -> None:
        self.log("info", msg, **fields)

    def warn(self, msg: str, **fields: object) -> None:
        self.log("warn", msg, **fields)

    def error(self, msg: str, **fields: object) -> None:
        self.log("error", msg, **fields)
