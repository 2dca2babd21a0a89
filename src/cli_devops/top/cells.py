"""Text of the console's cells and lines, from a `Frame`: pure functions, no widgets."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Protocol

from rich.text import Text

from cli_devops.forecast import describe, eta
from cli_devops.history import GONE, sparkline
from cli_devops.polling import age
from cli_devops.render import STATUS_STYLES
from cli_devops.text import plural, terminal_safe
from cli_devops.top.state import Frame, InstanceRow
from cli_devops.top.table import Cell


class Console(Protocol):
    """What a screen reads from the app it runs in (`app.TopApp`)."""

    frame: Frame | None
    paused: bool
    clock: Callable[[], float]

    def back_to_live(self) -> None: ...


STYLES = {**STATUS_STYLES, GONE: "dim", "Down": "bold red", "Slow": "bold yellow", "Waiting": "dim"}
BAR_LEVELS = " ▁▂▃▄▅▆▇█"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def alarm_cell(value: float | None, limit: float) -> Cell:
    return [(percent(value), "bold red" if value is not None and value > limit else "")]


def trend_cell(values: Sequence[float | None], width: int, limit: float) -> Cell:
    """The sparkline of `values`, red where a sample is above `limit`."""
    recent = list(values)[-width:]
    chars = sparkline(recent, width)
    alarms = [False] * (width - len(recent)) + [v is not None and v > limit for v in recent]
    return [
        ("".join(char for char, _ in run), "red" if alarm else "cyan")
        for alarm, run in itertools.groupby(
            zip(chars, alarms, strict=False), key=lambda pair: pair[1]
        )
    ]


def stats_cell(stats: tuple[float | None, float | None, float | None]) -> Cell:
    low, mean, high = stats
    if low is None or mean is None or high is None:
        return [("-", "dim")]
    return [(f"{low:3.0f} {mean:3.0f} {high:3.0f}", "")]


def delta_cell(value: float | None) -> Cell:
    if value is None:
        return [("", "")]
    if value == 0:
        return [("·", "dim")]
    return [(f"{value:+.0f}", "red" if value > 0 else "green")]


def forecasts(row: InstanceRow, frame: Frame) -> list[str]:
    """`mem 90% in ~12m` for each figure whose trend crosses its threshold within the hour."""
    found = []
    for figure, trend, limit in (
        ("cpu", row.cpu_trend, frame.thresholds.cpu),
        ("mem", row.memory_trend, frame.thresholds.memory),
    ):
        seconds = eta(trend, frame.interval, limit)
        if seconds is not None:
            found.append(describe(figure, limit, seconds))
    return found


def note(row: InstanceRow, frame: Frame) -> Cell:
    """Why the instance deserves a look: unreadable (and why), outlier, forecasts."""
    if row.error is not None:
        return [(terminal_safe(row.error), "yellow")]
    parts: list[tuple[str, str]] = []
    if row.outlier:
        parts.append(("outlier", "bold magenta"))
    for text in forecasts(row, frame):
        parts.append(("; " if parts else "", ""))
        parts.append((text, "yellow"))
    return parts or [("", "")]


def bars(values: Sequence[float | None], width: int, height: int) -> list[str]:
    """A `height`-line bar chart of the last `width` values on a 0-100 scale, top line first."""
    recent: list[float | None] = list(values)[-width:]
    recent[:0] = [None] * (width - len(recent))
    steps = len(BAR_LEVELS) - 1
    lines = []
    for line in range(height - 1, -1, -1):
        chars = []
        for value in recent:
            if value is None:
                chars.append(" ")
                continue
            filled = value / 100.0 * height * steps - line * steps
            chars.append(BAR_LEVELS[int(min(max(filled, 0), steps))])
        lines.append("".join(chars))
    return lines


def poll_line(
    frame: Frame | None, now: float, paused: bool, width: int | None = None
) -> list[tuple[str, str]]:
    """The header: where the data comes from, the last poll's time and age, the interval.

    In `width` columns: without the program's name, then with the source cut short, so that
    the poll, its age and the interval always show."""
    runs = _poll_runs(frame, now, paused)
    if width is None or frame is None or _length(runs) <= width:
        return runs
    runs = [(runs[1][0][len(" · ") :], runs[1][1]), *runs[2:]]
    over = _length(runs) - width
    if over > 0:
        source = runs[0][0]
        runs[0] = (source[: max(len(source) - over - 1, 8)] + "…", runs[0][1])
    return runs


def _length(runs: Sequence[tuple[str, str]]) -> int:
    return sum(len(text) for text, _ in runs)


def _poll_runs(frame: Frame | None, now: float, paused: bool) -> list[tuple[str, str]]:
    if frame is None:
        return [("cli_devops top", "bold"), (" · waiting for the first poll", "dim")]
    runs = [("cli_devops top", "bold"), (f" · {terminal_safe(frame.source)}", "")]
    if frame.replay is not None:
        replay = frame.replay
        runs.append((f" · poll {replay.position} of {replay.total}", ""))
    else:
        runs.append((f" · poll {frame.polls}", ""))
    if frame.moment is not None:
        shown = frame.moment.astimezone().strftime("%H:%M:%S")
        runs.append((f" at {shown}", ""))
        if frame.replay is None and not frame.historic:
            runs.append((f" ({age(now - frame.clock)} ago)", "dim"))
    if frame.replay is not None:
        runs.append((f" · speed ×{frame.replay.speed:g}", ""))
    else:
        runs.append((f" · every {frame.interval:g}s", ""))
    if paused:
        runs.append(("  PAUSED", "bold reverse yellow"))
    elif frame.historic:
        runs.append(("  HISTORIC", "bold reverse cyan"))
    return runs


def alert_line(frame: Frame | None, now: float) -> list[tuple[str, str]]:
    """Stale data and why, the end of a replay, lines a replay skipped; empty when all is well."""
    if frame is None:
        return []
    runs: list[tuple[str, str]] = []
    if frame.error is not None:
        failed = frame.polls - frame.ok_poll
        polls = "poll" if failed == 1 else f"{failed} polls"
        clock = frame.clock if frame.replay is not None else now
        if frame.ok_clock is None:
            head = f"⚠ no data yet, {polls} failed"
        else:
            head = (
                f"⚠ STALE: data of poll {frame.ok_poll}, {age(clock - frame.ok_clock)} old; "
                f"last {polls} failed"
            )
        runs.append((f"{head}: {terminal_safe(frame.error)}", "bold yellow"))
    replay = frame.replay
    if replay is not None:
        if replay.total == 0:
            runs.append(("  the recording holds no poll", "bold yellow"))
        elif replay.ended:
            runs.append(("  end of recording", "bold cyan"))
        if replay.skipped:
            lines = "line" if replay.skipped == 1 else "lines"
            runs.append(
                (
                    f"  {replay.skipped} {lines} of the recording skipped (cut short or corrupt)",
                    "yellow",
                )
            )
    return runs


def totals_line(frame: Frame | None, width: int | None = None) -> list[tuple[str, str]]:
    """The fleet's counts; in `width` columns, in fewer words (the need is on the place line)."""
    if frame is None:
        return [("", "")]
    for runs in (_totals_full(frame), _totals_short(frame, short=False)):
        if width is None or _length(runs) <= width:
            return runs
    return _totals_short(frame, short=True)


def _totals_short(frame: Frame, *, short: bool) -> list[tuple[str, str]]:
    t = frame.totals
    words = ("ok", "unh", "unk", "under-repl.", "out") if short else (
        "healthy", "unhealthy", "unknown", "under-replicated", "outlier" if t.outliers == 1
        else "outliers"
    )  # fmt: skip
    return [
        (f"{t.healthy} {words[0]}", "green"),
        (", ", ""),
        (f"{t.unhealthy} {words[1]}", "bold red" if t.unhealthy else ""),
        (", ", ""),
        (f"{t.unknown} {words[2]}", "yellow" if t.unknown else ""),
        (f" of {t.instances}; ", ""),
        (f"{t.flagged} {words[3]}", "bold red" if t.flagged else ""),
        (f"; {t.outliers} {words[4]}", "magenta" if t.outliers else ""),
    ]


def _totals_full(frame: Frame) -> list[tuple[str, str]]:
    t = frame.totals
    return [
        (f"{plural(t.instances, 'instance')} in {plural(t.services, 'service')}: ", ""),
        (f"{t.healthy} healthy", "green"),
        (", ", ""),
        (f"{t.unhealthy} unhealthy", "bold red" if t.unhealthy else ""),
        (", ", ""),
        (f"{t.unknown} unknown", "yellow" if t.unknown else ""),
        (
            f"; {t.flagged} under-replicated (fewer than {frame.min_healthy} healthy)",
            "bold red" if t.flagged else "",
        ),
        (f"; {plural(t.outliers, 'outlier')}", "magenta" if t.outliers else ""),
    ]


def runs_text(runs: Sequence[tuple[str, str]]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for part, spec in runs:
        text.append(part, style=spec or None)
    return text
