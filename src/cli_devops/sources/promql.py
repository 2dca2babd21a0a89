"""What a user writes for the Prometheus source, checked before anything is sent: the URL
(with Basic auth credentials), the label matchers that pick the fleet's series, and a moment
(`--at`). Pure functions, no network library, so the command line can check them cheaply.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from cli_devops.durations import parse_duration
from cli_devops.errors import UsageError
from cli_devops.hosts import host_problem
from cli_devops.redaction import redact

_MATCHER = re.compile(
    r"\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"
    r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)\s*"""
)


def prometheus_url(raw: str) -> tuple[str, str | None]:
    """Accept `host:port` or `http(s)://[user:password@]host:port[/prefix]`; return the base URL
    and, when the URL carries credentials, the base64 `user:password` for Basic auth."""
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    shown = redact(text)
    if not text.isprintable():
        raise UsageError(f"invalid URL {shown!r}: it has control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        reason = "expected http://HOST:PORT" if shown != text else str(err)
        raise UsageError(f"invalid URL {shown!r}: {reason}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid URL {shown!r}: expected http://HOST:PORT")
    if parts.query or parts.fragment:
        raise UsageError(f"invalid URL {shown!r}: no query or fragment allowed")
    problem = host_problem(parts.hostname)
    if problem:
        raise UsageError(f"invalid URL {shown!r}: {problem}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port is not None else host
    basic = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        basic = base64.b64encode(pair.encode()).decode()
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}", basic


def check_selector(text: str) -> str:
    """Label matchers in braces (`{job="cpx"}`), or empty; raises UsageError otherwise.

    Checked here rather than left to Prometheus, so that nothing but matchers reaches a query.
    """
    stripped = text.strip()
    if not stripped:
        return ""
    try:  # an argument's invalid UTF-8 byte arrives as a lone surrogate, which no query can hold
        stripped.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("invalid selector: not valid UTF-8 text") from None
    inner = stripped[1:-1] if stripped.startswith("{") and stripped.endswith("}") else None
    matchers = [] if inner is None or not inner.strip() else _split_matchers(inner)
    if inner is None or not matchers or not all(_MATCHER.fullmatch(m) for m in matchers):
        raise UsageError(f'invalid selector {text!r}: expected label matchers like {{job="cpx"}}')
    return "{" + ",".join(matcher.strip() for matcher in matchers) + "}"


def _split_matchers(inner: str) -> list[str]:
    """Split at commas outside quotes; a trailing comma is allowed, as in PromQL."""
    parts, current, quote_char, escaped = [], "", "", False
    for char in inner:
        if quote_char:
            current += char
            if escaped:
                escaped = False
            elif char == "\\" and quote_char != "`":
                escaped = True
            elif char == quote_char:
                quote_char = ""
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
            if char in "\"'`":
                quote_char = char
    if current.strip() or not parts:
        parts.append(current)
    return parts


def with_matcher(selector: str, name: str, value: str) -> str:
    """`selector` narrowed by `name="value"` (the value quoted as a PromQL string)."""
    matcher = f"{name}={json.dumps(value, ensure_ascii=False)}"
    return "{" + matcher + "}" if not selector else selector[:-1] + "," + matcher + "}"


def parse_moment(text: str, now: float) -> float:
    """A moment as Unix seconds: RFC 3339 (`2026-12-04T17:00:00Z`, an offset instead of Z), or
    relative to `now`: `-90s`, `-5m`, `5m ago`, `1h30m ago` (units ms, s, m, h, d, w). A moment
    after `now` or before 1970 is refused."""
    stripped = text.strip()
    relative = None
    if stripped.startswith("-"):
        relative = stripped[1:].strip()
    elif stripped.endswith(" ago"):
        relative = stripped[:-4].strip()
    if relative is not None:
        seconds = _duration(relative)
        if seconds is None:
            raise UsageError(f"invalid time {text!r}: expected a duration like -5m or '5m ago'")
        return _in_range(text, now - seconds)
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or "T" not in stripped.upper() or moment.tzinfo is None:
        raise UsageError(
            f"invalid time {text!r}: expected RFC 3339 like 2026-12-04T17:00:00Z, or -5m"
        )
    if moment.timestamp() > now + 1:
        raise UsageError(f"time {text!r} is in the future; Prometheus only knows the past")
    return _in_range(text, moment.timestamp())


def _in_range(text: str, moment: float) -> float:
    """`moment`, if it can be shown and sent: from 1970 on (a relative time of a million weeks
    came to a date no calendar type holds)."""
    if not moment >= 0:
        raise UsageError(
            f"time {text!r} is before 1970-01-01T00:00:00Z; Prometheus has no data then"
        )
    return moment


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")[:-6] + "Z"


def _duration(text: str) -> float | None:
    """The one duration grammar of every option (`durations.py`), so `--at -1d` and
    `--timeout 1d` read alike; a moment needs its unit (`-5` is more likely a slip than
    five seconds ago)."""
    if not text or not text[-1].isalpha():
        return None
    try:
        return parse_duration(text)
    except ValueError:
        return None
