"""The `b` prompt: a moment to go to, typed and checked before the feed is asked for it."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from cli_devops.errors import UsageError
from cli_devops.top.travel import WHEN_FORMS, parse_when


class TimePrompt(ModalScreen["datetime | None"]):
    """Answers the moment typed (Enter) or None (Esc); a text that names no moment is said on
    the prompt's second line, and the prompt stays open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False),
    ]
    DEFAULT_CSS = """
    TimePrompt { align: center bottom; }
    #when { width: 100%; height: auto; background: $panel; padding: 0 1; margin-bottom: 2; }
    #when Input { border: none; height: 1; padding: 0; }
    #when-error { color: $warning; height: auto; }
    """

    def __init__(self, on_screen: datetime) -> None:
        super().__init__()
        self.on_screen = on_screen

    def compose(self) -> ComposeResult:
        shown = self.on_screen.astimezone().strftime("%H:%M:%S")
        with Vertical(id="when"):
            yield Static(f"go to (from {shown}): {WHEN_FORMS}; Enter goes, Esc cancels")
            yield Input(placeholder="HH:MM, -5m, 2026-12-04T17:00:00Z", id="when-input")
            yield Static("", id="when-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            moment = parse_when(event.value, self.on_screen)
        except UsageError as err:
            self.query_one("#when-error", Static).update(str(err))
            return
        self.dismiss(moment)

    def action_cancel(self) -> None:
        self.dismiss(None)
