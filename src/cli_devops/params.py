"""The click parameter types of every option and of the contexts file: numbers that are finite
and in range, and durations (`durations.Duration`), in the words of a person.

click's `FloatRange` lets `nan` through (every comparison with it is false, so no bound
refuses it) and `inf` where a side is open; an `IntRange` without a maximum takes a number of a
thousand digits. These types refuse both with the option's name, so code past the parse never
sees a number it cannot compare or sleep for.

They also speak as the help does: `--min-healthy N` (a metavar, not click's `INTEGER RANGE`),
`[default: 2; at least 1]` (not `x>=1`), and `'x' is not a whole number; give N, at least 1`
(not `not a valid integer range`).
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import click

from cli_devops.durations import Duration

__all__ = ["MAX_WHOLE", "Duration", "Number", "Whole"]

MAX_WHOLE = 2**31 - 1
"""Largest whole number any option takes (counts, sizes); more is a typo, not a wish."""


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _describe(low: float | None, high: float | None) -> str:
    """`from 1 to 1000`, `at least 1`; empty for no bound (help then shows none)."""
    if high is not None and high >= MAX_WHOLE:
        high = None  # the cap against typos is no range anyone chose
    if low is not None and high is not None:
        return f"from {_plain(low)} to {_plain(high)}"
    if low is not None:
        return f"at least {_plain(low)}"
    return f"at most {_plain(high)}" if high is not None else ""


def _shown(value: Any) -> str:
    """The value as a message may repeat it: quoted, cut short."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= 40 else text[:37] + "…'"


def _refuse(
    kind: click.ParamType[Any],
    what: str,
    param: click.Parameter | None,
    ctx: click.Context | None,
    bounds: str,
) -> NoReturn:
    """Fail with `what`, then what to give: the option's metavar (PCT, N) and its range."""
    metavar = getattr(param, "metavar", None) or getattr(kind, "metavar", "")
    hint = f"; give {metavar}{', ' + bounds if bounds else ''}" if metavar else ""
    kind.fail(f"{what}{hint}", param, ctx)


class Number(click.FloatRange):
    """A finite float within `[min, max]` (either side open when `min_open`/`max_open`);
    `metavar` names it in help and in its messages unless the option names it."""

    name = "number"

    def __init__(self, *args: Any, metavar: str = "X", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metavar = metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            _refuse(self, f"{value!r} is not a number", param, ctx, self._describe_range())
        if isinstance(value, str) and len(value) > 64:
            self.fail(f"{value[:20]!r}…: too long for a number", param, ctx)
        try:
            number = float(value)
        except (TypeError, ValueError):
            _refuse(self, f"{_shown(value)} is not a number", param, ctx, self._describe_range())
        if not math.isfinite(number):
            _refuse(self, f"{_shown(value)} is not a finite number", param, ctx,
                    self._describe_range())  # fmt: skip
        try:
            return super().convert(number, param, ctx)
        except click.BadParameter:
            _refuse(self, f"{number:g} is out of range", param, ctx, self._describe_range())

    def _describe_range(self) -> str:
        return _describe(self.min, self.max)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.metavar


class Whole(click.IntRange):
    """A whole number within `[min, max]`; `max` defaults to MAX_WHOLE. `metavar` names it in
    help and in its messages unless the option names it."""

    name = "whole number"

    def __init__(
        self, min: int | None = None, max: int | None = MAX_WHOLE, *, metavar: str = "N"
    ) -> None:
        super().__init__(min=min, max=MAX_WHOLE if max is None else max)
        self.metavar = metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        bounds = self._describe_range()
        if isinstance(value, bool):
            _refuse(self, f"{value!r} is not a whole number", param, ctx, bounds)
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                _refuse(self, f"{value!r} is not a whole number", param, ctx, bounds)
            if abs(value) > MAX_WHOLE:
                self.fail(f"{value:g} is too large", param, ctx)
            value = int(value)
        if isinstance(value, str) and len(value) > 32:
            self.fail(f"{value[:20]!r}…: too long for a whole number", param, ctx)
        try:
            number = int(value)
        except (TypeError, ValueError):
            _refuse(self, f"{_shown(value)} is not a whole number", param, ctx, bounds)
        if self.max is not None and self.max >= MAX_WHOLE and number > self.max:
            self.fail(f"{number} is too large", param, ctx)
        try:
            return super().convert(number, param, ctx)
        except click.BadParameter:
            _refuse(self, f"{number} is out of range", param, ctx, bounds)

    def _describe_range(self) -> str:
        return _describe(self.min, self.max)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.metavar
