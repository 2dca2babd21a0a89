"""When an instance's trend would cross a threshold: a least-squares line over its history."""

from __future__ import annotations

from collections.abc import Sequence

MIN_SAMPLES = 10
"""Fewer samples than this say too little about a trend."""
HORIZON = 3600.0
"""Crossings further away than this (seconds) are not shown."""
MIN_FIT = 0.5
"""Share of the samples' variation the line must explain (R²): below it the samples wobble
around a level more than they climb, and a forecast would be noise."""


def eta(values: Sequence[float | None], interval: float, threshold: float) -> float | None:
    """Seconds until the least-squares line through `values` (one sample per `interval`
    seconds, None for a gap) reaches `threshold`, counted from the newest sample's place on that
    line; None when there are fewer than MIN_SAMPLES samples, the line does not rise or explains
    less than MIN_FIT of the variation, the value is already above `threshold`, or the crossing
    is more than HORIZON away.
    """
    points = [(float(x), value) for x, value in enumerate(values) if value is not None]
    if len(points) < MIN_SAMPLES or interval <= 0:
        return None
    if points[-1][1] > threshold:
        return None
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    if slope <= 0:
        return None
    variation = sum((y - mean_y) ** 2 for _, y in points)
    if slope * slope * spread < MIN_FIT * variation:
        return None
    now_x = float(len(values) - 1)
    fitted = mean_y + slope * (now_x - mean_x)
    seconds = max(0.0, (threshold - fitted) / slope * interval)
    return seconds if seconds <= HORIZON else None


def describe(figure: str, threshold: float, seconds: float) -> str:
    """`mem 90% in ~12m`: rounded to the minute, `<1m` below one."""
    minutes = round(seconds / 60)
    when = "<1m" if minutes < 1 else f"~{minutes}m"
    return f"{figure} {threshold:g}% in {when}"
