"""Durations as people write them: `1.5`, `1500ms`, `2s`, `1m`, `1m30s`, `1h`, `1d`, `1w`.

One grammar for every duration the tool reads: the options that take seconds and the relative
moments of `--at` (`-1d`, `1h30m ago`) alike.

`parse_duration` turns the text into seconds (a plain number is seconds, as before durations were
accepted); `Duration` is the click parameter type of every option that takes seconds, so
`--timeout 5s` and `--timeout 5` mean the same thing.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # click's ParamType is generic in its stubs and recent releases only
    from typing import TypeAlias

    _FloatParamType: TypeAlias = click.ParamType[float]
else:
    _FloatParamType = click.ParamType

ACCEPTED_FORMS = (
    "seconds (1.5) or a number with w, d, h, m, s or ms, largest unit first (1500ms, 2s, 1m, "
    "1m30s, 1d)"
)
MAX_TEXT = 64
"""Longer text is no duration anyone writes; refused before the expression runs."""
MAX_SECONDS = 10 * 365 * 24 * 3600.0
"""Ten years: anything longer is a mistake (and would overflow the event loop's timers)."""

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_UNITS = (
    rf"(?:(?P<w>{_NUMBER})w)?(?:(?P<d>{_NUMBER})d)?(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m(?!s))?"
    rf"(?:(?P<s>{_NUMBER})s)?(?:(?P<ms>{_NUMBER})ms)?"
)
"""Compiled (and cached by `re`) on the first duration parsed, not when `--help` imports this."""
_SCALE = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds of `text`; raises ValueError naming the accepted forms.

    ASCII digits only (`str.isdigit` would take other scripts' digits), no sign, no exponent,
    no infinity: a duration from a config file or a shell is untrusted text.
    """
    stripped = text.strip()
    if len(stripped) > MAX_TEXT:
        raise ValueError(f"{stripped[:20]}…: too long for a duration; use {ACCEPTED_FORMS}")
    if re.fullmatch(_NUMBER, stripped):
        seconds = float(stripped)
    else:
        match = re.fullmatch(_UNITS, stripped)
        if not stripped or match is None:
            raise ValueError(f"{text!r} is not a duration; use {ACCEPTED_FORMS}")
        seconds = sum(
            float(value) * _SCALE[unit] for unit, value in match.groupdict().items() if value
        )
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is too long a duration (at most ten years)")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest of the accepted forms for help text: `5s`, `500ms`, `1m30s`."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes and float(minutes).is_integer():
        return f"{minutes:g}m{rest:g}s" if rest else f"{minutes:g}m"
    return f"{seconds:g}s"


class Duration(_FloatParamType):
    """A click type for seconds written as a duration, with an optional lower bound.

    `minimum` is inclusive unless `min_open`; numbers (from a config file) are taken as seconds.
    """

    name = "duration"

    def __init__(self, minimum: float = 0.0, *, min_open: bool = True) -> None:
        self.minimum = minimum
        self.min_open = min_open

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a duration; use {ACCEPTED_FORMS}", param, ctx)
        if isinstance(value, (int, float)):
            seconds = float(value)
            if not math.isfinite(seconds) or seconds > MAX_SECONDS:
                self.fail(f"{value!r} is not a usable duration", param, ctx)
        elif isinstance(value, str):
            try:
                seconds = parse_duration(value)
            except ValueError as err:
                self.fail(str(err), param, ctx)
        else:
            self.fail(f"{value!r} is not a duration; use {ACCEPTED_FORMS}", param, ctx)
        too_small = seconds <= self.minimum if self.min_open else seconds < self.minimum
        if too_small:
            bound = "more than" if self.min_open else "at least"
            self.fail(f"{value!r} is too short: must be {bound} {format_duration(self.minimum)}",
                      param, ctx)  # fmt: skip
        return seconds

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def __repr__(self) -> str:
        return f"Duration(minimum={self.minimum!r}, min_open={self.min_open!r})"
