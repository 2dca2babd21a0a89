"""The console's keys, as the help screen and the key line show them."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS_HINT = (
    "↑↓/jk move  Enter open  Esc back  / filter  s sort  p pause  r poll now  ? help  q quit"
)
KEYS_SHORT = "↑↓ move  Enter open  Esc back  / filter  s sort  p pause  ? help  q quit"
"""The key line in a terminal narrower than KEYS_HINT: `? help` lists the rest."""


def keys_hint(width: int) -> str:
    return KEYS_HINT if len(KEYS_HINT) <= width else KEYS_SHORT


HELP = [
    ("↑ ↓  j k", "move; PgUp PgDn Home End jump"),
    ("Enter", "open the service or instance under the cursor"),
    (
        "Esc  Backspace",
        "back to the previous screen (Esc clears a filter first); on the fleet "
        "screen, out of the past",
    ),
    ("/", "filter services by name, instances by IP or status; Enter applies"),
    ("s", "sort by the next column (or click a column's header)"),
    ("p", "pause the view (polls go on); in a replay, pause the replay"),
    ("← →", "in a paused replay: one poll back or on"),
    ("T  t", "one sample back / on (a replay pauses; live, the view stays there)"),
    ("b", "go to a time: HH:MM[:SS], an RFC 3339 instant, or -5m from the screen's"),
    ("L", "back to live (in a replay: play on)"),
    ("r", "sample now (atop's live t)"),
    ("?", "this help"),
    ("q  Ctrl+C", "quit"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,backspace,q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        text = Text("Keys\n\n", style="bold")
        for keys, what in HELP:
            text.append(f"  {keys:<16}", style="bold cyan")
            text.append(f"{what}\n")
        text.append("\nEsc, ? or q closes this help.", style="dim")
        with Vertical(id="help"):
            yield Static(text)

    def action_close(self) -> None:
        self.app.pop_screen()
