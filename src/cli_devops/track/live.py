"""What `track` shows on a terminal: the live view (built afresh every redraw) and the summary.

`build_view` is a pure function of a `TrackState`, the current monotonic time and the terminal
size; the poll loop calls it on every tick and hands the result to rich's `Live`. It fits the
view to the terminal: rows beyond the height are cut (the worst instances are first, so the ones
cut are the healthiest), and a narrow window loses the sparklines before it loses any number.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cli_devops.health import Status, summarize_services
from cli_devops.history import (
    ASCII_LEVELS,
    GONE,
    ROW_ORDER,
    SPARK_LEVELS,
    InstanceTrack,
    TrackState,
    sparkline,
)
from cli_devops.polling import age
from cli_devops.redaction import redact
from cli_devops.render import STATUS_STYLES
from cli_devops.text import plural, terminal_safe

if TYPE_CHECKING:
    from rich.console import OverflowMethod, RenderableType
    from rich.text import Text

MAX_NOTE = len("outlier")
MIN_SPARK = 8
"""Narrower than this, a sparkline says too little: drop it and keep the numbers."""
STATS_WIDTH = len("min avg max")
FIXED_LINES = 5
"""Title, status line, blank line, table header, footer."""
STYLES = {**STATUS_STYLES, GONE: "dim"}


@dataclass(frozen=True)
class Layout:
    """Which optional columns fit: sparkline width (0: none) and the min/avg/max columns."""

    spark: int
    stats: bool


def choose_layout(width: int, history: int, core: int) -> Layout:
    """Fit the view into `width` columns; `core` is the width of IP, Status, CPU and Memory.

    Columns are one space apart, two between the CPU and the memory group. Sparklines shrink
    (showing fewer, most recent samples) down to MIN_SPARK, then go; min/avg/max go only when
    even they do not fit.
    """
    with_stats = core + 2 * (STATS_WIDTH + 1) + 1
    spark = min(history, (width - with_stats - 2) // 2)
    if spark >= min(MIN_SPARK, history):
        return Layout(spark, stats=True)
    return Layout(0, stats=with_stats <= width)


def row_order(track: InstanceTrack, status: str) -> tuple[int, float, tuple[int, int]]:
    """Worst first: Unhealthy, Unknown, Gone, Healthy; then the busiest; then IP.

    `status` is `TrackState.status_of(track)`, worked out once per redraw by the caller.
    """
    latest = track.latest
    load = max(latest.cpu or 0.0, latest.memory or 0.0) if not track.gone else 0.0
    return (ROW_ORDER[status], -load, track.order)


def build_view(
    state: TrackState, *, now: float, width: int, height: int, unicode: bool = True
) -> RenderableType:
    """The whole screen for `state` at monotonic time `now`, at most `width` x `height`."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    # Every instance is sorted and counted on each redraw (cheap: no parsing, no layout); only
    # the rows that fit become rich cells.
    rows = sorted(
        ((track, state.status_of(track)) for track in state.tracks.values()),
        key=lambda pair: row_order(*pair),
    )
    tracks = [track for track, _ in rows]
    statuses = [status for _, status in rows]
    reasons = _unknown_reasons(state, tracks)
    room = max(0, height - FIXED_LINES - (1 if reasons else 0))
    shown = len(tracks) if len(tracks) <= room else max(0, room - 1)

    ip_width = max([len("IP")] + [len(track.ip) for track in tracks[:shown]])
    status_width = max([len("Status")] + [len(status) for status in statuses[:shown]])
    core = ip_width + status_width + len("100%") + len("Memory") + 3
    notes = [_note(state, track) for track in tracks[:shown]]
    note_width = min(max(map(len, notes), default=0), MAX_NOTE)
    layout = choose_layout(width - (note_width + 1 if note_width else 0), state.history, core)
    levels = SPARK_LEVELS if unicode else ASCII_LEVELS
    overflow: OverflowMethod = "ellipsis" if unicode else "crop"

    table = Table(
        box=None, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False, header_style="bold"
    )
    table.add_column("IP", no_wrap=True, overflow=overflow, min_width=ip_width)
    table.add_column("Status", no_wrap=True, overflow=overflow, min_width=status_width)
    for header, spacer in (("CPU", 1), ("Memory", 0)):
        table.add_column(header, justify="right", no_wrap=True, overflow=overflow)
        if layout.spark:
            table.add_column("trend", no_wrap=True, overflow=overflow, width=layout.spark)
        if layout.stats:
            table.add_column(
                "min avg max", no_wrap=True, overflow=overflow, width=STATS_WIDTH + spacer
            )
    if note_width:
        table.add_column("Note", no_wrap=True, overflow=overflow, max_width=MAX_NOTE)
    for track, status, flag in zip(tracks[:shown], statuses[:shown], notes, strict=False):
        cells = _row(state, track, status, layout, levels)
        if note_width:
            cells.append(Text(flag, style="bold magenta"))
        table.add_row(*cells)

    lines: list[RenderableType] = [
        _one_line(_title(state, unicode), overflow),
        _one_line(_status_line(state, now, unicode), overflow),
        Text(""),
        table,
    ]
    if shown < len(tracks):
        note = Text(_hidden_note(statuses[shown:], unicode), style="dim")
        lines.append(_one_line(note, overflow))
    lines.append(_one_line(_footer(state, statuses), overflow))
    if reasons:
        lines.append(_one_line(Text(reasons, style="yellow"), overflow))
    return Group(*lines)


def _note(state: TrackState, track: InstanceTrack) -> str:
    """`outlier` when the instance is one within its service (health.outliers), as in `top`'s
    Note; forecasts stay in `top`, where there is room for them."""
    return "outlier" if not track.gone and track.ip in state.flagged else ""


def _one_line(text: Text, overflow: OverflowMethod) -> Text:
    text.no_wrap = True
    text.overflow = overflow
    return text


def _row(
    state: TrackState, track: InstanceTrack, status: str, layout: Layout, levels: str
) -> list[Text]:
    from rich.text import Text

    dim = "dim" if state.stale or track.gone else ""
    cells = [Text(track.ip, style=dim), Text(status, style=f"{STYLES.get(status, '')} {dim}")]
    limits = (state.thresholds.cpu, state.thresholds.memory)
    for series, value, limit in zip(
        (track.cpu, track.memory), (track.latest.cpu, track.latest.memory), limits, strict=False
    ):
        shown = None if track.gone else value
        number = "-" if shown is None else f"{shown:.0f}%"
        alarm = shown is not None and shown > limit
        cells.append(Text(number, style=f"{'bold red' if alarm else ''} {dim}"))
        if layout.spark:
            cells.append(_spark_text(series.recent, layout.spark, limit, levels, dim))
        if layout.stats:
            stats = series.stats
            cells.append(Text(_stats_cell(stats.low, stats.mean, stats.high), style=dim))
    return cells


def _spark_text(
    values: Sequence[float | None], width: int, limit: float, levels: str, dim: str
) -> Text:
    """The sparkline, red where a sample is above the threshold; runs share one style."""
    from rich.text import Text

    recent = list(values)[-width:]
    chars = sparkline(recent, width, levels=levels)
    alarms = [False] * (width - len(recent)) + [v is not None and v > limit for v in recent]
    text = Text()
    for alarm, run in itertools.groupby(zip(chars, alarms, strict=False), key=lambda pair: pair[1]):
        text.append("".join(char for char, _ in run), style=f"{'red' if alarm else 'cyan'} {dim}")
    return text


def _stats_cell(low: float | None, mean: float | None, high: float | None) -> str:
    if low is None or mean is None or high is None:
        return "-"
    return f"{low:3.0f} {mean:3.0f} {high:3.0f}"


def _title(state: TrackState, unicode: bool) -> Text:
    from rich.text import Text

    dot = " · " if unicode else " - "
    text = Text()
    text.append(terminal_safe(state.service), style="bold")
    text.append(f"{dot}poll {state.polls}")
    if state.last_moment is not None:
        text.append(f" at {state.last_moment.astimezone().strftime('%H:%M:%S')}")
    text.append(f"{dot}every {state.interval:g}s{dot}{redact(state.base_url)}")
    return text


def _status_line(state: TrackState, now: float, unicode: bool) -> Text:
    from rich.text import Text

    warn = "⚠ " if unicode else "! "
    in_flight = ""
    if state.poll_started is not None and now - state.poll_started >= 1.0:
        in_flight = f"; polling for {age(now - state.poll_started)}"
    if state.polls == 0:
        return Text(f"waiting for the first answer of the CPX API{in_flight}", style="dim")
    if state.error is None:
        assert state.last_ok_clock is not None
        return Text(f"updated {age(now - state.last_ok_clock)} ago{in_flight}", style="dim")
    failed = state.polls - state.last_ok_poll
    polls = "poll" if failed == 1 else f"{failed} polls"
    if state.last_ok_clock is None:
        head = f"{warn}no data yet, {polls} failed"
    else:
        old = age(now - state.last_ok_clock)
        head = f"{warn}STALE: data of poll {state.last_ok_poll}, {old} old; last {polls} failed"
    return Text(f"{head}{in_flight}: {terminal_safe(state.error)}", style="bold yellow")


def _footer(state: TrackState, statuses: Sequence[str]) -> Text:
    """The service's verdict first (it survives a narrow window), then the counts; under a
    stale banner, which poll those figures are from."""
    from rich.text import Text

    counts = {name: statuses.count(name) for name in (*STATUS_STYLES, GONE)}
    present = [track.latest for track in state.tracks.values() if not track.gone]
    summaries = summarize_services(present, state.thresholds, state.min_healthy)
    healthy = summaries[0].healthy if summaries else 0
    ok = bool(summaries) and summaries[0].status is Status.HEALTHY
    text = Text()
    if state.last_ok_clock is None:  # nothing was measured: no verdict either way
        polls = "the poll" if state.polls == 1 else f"all {state.polls} polls"
        text.append("Service state unknown", style="bold yellow")
        text.append(f": the API could not be read ({polls} failed)")
        return text
    if state.error is not None and state.last_ok_clock is not None:
        text.append(f"As of poll {state.last_ok_poll}, the last good one: ", style="yellow")
    text.append(
        f"Service {'Healthy' if ok else 'Unhealthy'}", style="bold green" if ok else "bold red"
    )
    text.append(
        f": {healthy} of {plural(len(present), 'instance')} healthy, needs {state.min_healthy}; "
        f"{counts['Unhealthy']} unhealthy, {counts['Unknown']} unknown"
    )
    if counts[GONE]:
        text.append(f", {counts[GONE]} gone")
    return text


def _hidden_note(statuses: Sequence[str], unicode: bool) -> str:
    counts = [f"{statuses.count(name)} {name.lower()}" for name in ROW_ORDER if name in statuses]
    more = "… " if unicode else "... "
    return f"{more}{len(statuses)} more not shown ({', '.join(counts)})"


def _unknown_reasons(state: TrackState, tracks: Sequence[InstanceTrack]) -> str:
    unread = [t for t in tracks if not t.gone and t.latest.error is not None]
    if not unread:
        return ""
    parts = [f"{t.ip} {terminal_safe(t.latest.error or '')}" for t in unread[:5]]
    more = f"; {len(unread) - 5} more" if len(unread) > 5 else ""
    return "unknown: " + "; ".join(parts) + more


def build_summary(
    state: TrackState, *, unicode: bool = True, width: int | None = None
) -> RenderableType:
    """What `track` leaves on the terminal when it stops: per instance since it was first seen,
    the samples read, min/avg/max CPU and memory, and the share of polls it was Healthy.

    As compact as the live view (one space between columns) so it fits 60 columns; in a window
    narrower than the table (`width`), one wrapped line per instance instead, so no figure is
    cut off.
    """
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    overflow: OverflowMethod = "ellipsis" if unicode else "crop"
    tracks = state.all_tracks()
    title = Text(summary_title(state), style="bold")
    if not tracks:
        return Group(title, Text("No instance was read."))
    rows = [_summary_row(state, track) for track in tracks]
    table = Table(box=None, padding=(0, 0, 0, 1), pad_edge=False, header_style="bold")
    table.add_column("IP", no_wrap=True, overflow=overflow)
    table.add_column("Status", no_wrap=True, overflow=overflow)
    table.add_column("Samples", justify="right", no_wrap=True, overflow=overflow)
    for figure in ("CPU", "Memory"):
        header = Text(f"{figure}\nmin avg max", justify="center")
        table.add_column(header, justify="right", no_wrap=True, overflow=overflow)
    table.add_column("Healthy", justify="right", no_wrap=True, overflow=overflow)
    for ip, status, samples, cpu, memory, share in rows:
        table.add_row(ip, Text(status, style=STYLES.get(status, "")), samples, cpu, memory, share)
    note = "Healthy: share of its polls in which it was Healthy."
    if width is None or Console(width=10_000).measure(table).maximum <= width:
        return Group(title, table, _one_line(Text(note, style="dim"), overflow))
    lines = []
    for ip, status, samples, cpu, memory, share in rows:
        line = Text(f"{ip} ")
        line.append(status, style=STYLES.get(status, ""))
        plural = "" if samples == "1" else "s"
        figures = f"CPU {'/'.join(cpu.split())}, memory {'/'.join(memory.split())}"
        line.append(f": {samples} sample{plural}, {figures}, Healthy {share}")
        lines.append(line)
    note = "CPU and memory: min/avg/max. " + note
    return Group(title, *lines, Text(note, style="dim"))


def _summary_row(state: TrackState, track: InstanceTrack) -> tuple[str, str, str, str, str, str]:
    cpu, memory = track.cpu.stats, track.memory.stats
    share = track.healthy_share
    return (
        track.ip,
        state.status_of(track),
        str(cpu.count),
        _stats_cell(cpu.low, cpu.mean, cpu.high),
        _stats_cell(memory.low, memory.mean, memory.high),
        "-" if share is None else f"{math.floor(share)}%",
    )


def summary_title(state: TrackState) -> str:
    span = 0.0
    if state.first_clock is not None and state.last_clock is not None:
        span = state.last_clock - state.first_clock
    failed = f", {state.failed} failed" if state.failed else ""
    return f"{terminal_safe(state.service)}: {state.polls} polls over {age(span)}{failed}"
