"""The click parameter types of every option and of the contexts file: numbers that are finite
and in range, and durations (`durations.Duration`).

click's `FloatRange` lets `nan` through (every comparison with it is false, so no bound
refuses it) and `inf` where a side is open; an `IntRange` without a maximum takes a number of a
thousand digits. These types refuse both with the option's name, so code past the parse never
sees a number it cannot compare or sleep for.
"""

from __future__ import annotations

import math
from typing import Any

import click

from cli_devops.durations import Duration

__all__ = ["MAX_WHOLE", "Duration", "Number", "Whole"]

MAX_WHOLE = 2**31 - 1
"""Largest whole number any option takes (counts, sizes); more is a typo, not a wish."""


class Number(click.FloatRange):
    """A finite float within `[min, max]` (either side open when `min_open`/`max_open`)."""

    name = "float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        if isinstance(value, str) and len(value) > 64:
            self.fail(f"{value[:20]!r}…: too long for a number", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class Whole(click.IntRange):
    """A whole number within `[min, max]`; `max` defaults to MAX_WHOLE."""

    name = "integer range"

    def __init__(self, min: int | None = None, max: int | None = MAX_WHOLE) -> None:
        super().__init__(min=min, max=MAX_WHOLE if max is None else max)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                self.fail(f"{value!r} is not a whole number", param, ctx)
            if abs(value) > MAX_WHOLE:
                self.fail(f"{value:g} is too large", param, ctx)
            value = int(value)
        if isinstance(value, str) and len(value) > 32:
            self.fail(f"{value[:20]!r}…: too long for a whole number", param, ctx)
        return super().convert(value, param, ctx)
