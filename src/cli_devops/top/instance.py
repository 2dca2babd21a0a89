"""The instance screen: one instance's CPU and memory history at length, last error, forecast."""

from __future__ import annotations

from typing import ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from cli_devops.polling import age
from cli_devops.text import terminal_safe
from cli_devops.top import cells
from cli_devops.top.cells import runs_text
from cli_devops.top.keys import KEYS_HINT
from cli_devops.top.state import Frame, key_title

CHART_HEIGHT = 5


class InstanceScreen(Screen[None]):
    """One instance: its CPU and memory history at full width, last error, forecast."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "back", "Back", show=False),
    ]

    def __init__(self, service: str, ip: str) -> None:
        super().__init__()
        self.service = service
        self.ip = ip

    @property
    def top(self) -> cells.Console:
        return cast("cells.Console", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="body")
        yield Static(KEYS_HINT, id="keys")

    def retarget(self, service: str, ip: str) -> None:
        self.service = service
        self.ip = ip

    def on_mount(self) -> None:
        self.show(self.top.frame)

    def on_screen_resume(self) -> None:
        self.show(self.top.frame)

    def on_resize(self) -> None:
        self.show(self.top.frame)

    def action_back(self) -> None:
        self.app.pop_screen()

    def show(self, frame: Frame | None) -> None:
        if not self.is_mounted:
            return
        now = self.top.clock()
        header = runs_text(cells.poll_line(frame, now, self.top.paused))
        alert = cells.alert_line(frame, now)
        if alert:
            header.append("\n")
            header.append_text(runs_text(alert))
        self.query_one("#header", Static).update(header)
        self.query_one("#body", Static).update(self.body(frame, now))

    def body(self, frame: Frame | None, now: float) -> Text:
        place = Text(f"Fleet › {key_title(self.service)} › {self.ip}\n", style="bold")
        row = None
        if frame is not None:
            row = next((r for r in frame.instances.get(self.service, ()) if r.ip == self.ip), None)
        if frame is None or row is None:
            place.append("This instance is no longer in the fleet.", style="yellow")
            return place
        text = place
        text.append(f"{row.status}", style=cells.STYLES.get(row.status, ""))
        if row.outlier:
            text.append("  outlier", style="bold magenta")
        text.append("\n\n")
        width = max(10, min(frame.history, (self.size.width or 80) - 8))
        for name, value, trend, stats, limit in (
            ("CPU", row.cpu, row.cpu_trend, row.cpu_stats, frame.thresholds.cpu),
            ("Memory", row.memory, row.memory_trend, row.memory_stats, frame.thresholds.memory),
        ):
            low, mean, high = stats
            text.append(f"{name} {cells.percent(value)}", style="bold")
            if low is not None and mean is not None and high is not None:
                text.append(f"   min {low:.0f}%  avg {mean:.0f}%  max {high:.0f}%", style="dim")
            text.append(f"   (threshold {limit:g}%)\n", style="dim")
            for line in cells.bars(trend, width, CHART_HEIGHT):
                text.append("  │" + line + "\n", style="cyan")
            text.append("  └" + "─" * width + "\n\n", style="dim")
        clock = frame.clock if frame.replay is not None else now
        if row.last_error is None:
            text.append("Last error: none\n")
        else:
            reason, when = row.last_error
            text.append(f"Last error: {terminal_safe(reason)} ({age(clock - when)} ago)\n")
        found = cells.forecasts(row, frame)
        text.append("Forecast: " + ("; ".join(found) if found else "no threshold within the hour"))
        return text
