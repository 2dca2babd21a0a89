"""The frame of every `top` table screen: the poll header, the `/` filter, a sortable `RowTable`
and the fleet's totals (`FrameView`), which the fleet and service screens fill with their rows."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar, cast

from textual import events
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from cli_devops.top import cells
from cli_devops.top.cells import runs_text
from cli_devops.top.keys import KEYS_HINT, keys_hint
from cli_devops.top.state import Frame
from cli_devops.top.table import Cell, RowTable, RowTableColumn

MIN_SPARK = 6


def plain(text: str, spec: str = "") -> Cell:
    return [(text, spec)]


class FilterBox(Input):
    """The `/` filter. Enter applies it at once, not through a message; keys typed ahead of the
    screen (Enter Enter: filter, then open) may still reach the box after it closed, and an
    Enter there opens the row under the cursor, as it would have in the table."""

    def __init__(self, apply: Callable[[str], None], choose: Callable[[], None]) -> None:
        super().__init__(placeholder="filter (Enter applies, empty clears)", id="filter")
        self.apply = apply
        self.choose = choose

    async def action_submit(self) -> None:
        if self.display:
            self.apply(self.value)
        else:
            self.choose()

    async def _on_key(self, event: events.Key) -> None:
        """The box's own keys (Backspace, Enter, arrows) run here, in the order typed. Left to
        Textual, a bound key runs once it has bubbled up to the app, after the letters typed
        behind it: `/`, Backspaces and `Geo` in one burst left an empty filter."""
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            event.stop()
            event.prevent_default()
            await self.run_action(binding.action)
            return
        await super()._on_key(event)


class FrameView(Screen[None]):
    """A screen with the poll header, a filterable, sortable table and the fleet's totals."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=False),
        Binding("backspace", "up", "Back", show=False),
        # A priority binding runs as the app takes the key from the terminal, so the box has
        # the focus before the next key of the same burst is handed on: all of them reach it,
        # in order. In the open box, `/` is text (the action skips).
        Binding("slash", "filter", "Filter", show=False, priority=True),
        Binding("s", "sort", "Sort", show=False),
    ]
    place = "Fleet"
    default_sort = 0

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort_column = self.default_sort
        self.spark = -1
        self.laid_out = 0
        self.table = RowTable(self.columns(0), self.row_key)
        self.table.sort_column = self.sort_column

    @property
    def top(self) -> cells.Console:
        return cast("cells.Console", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="place")
        yield self.table
        yield FilterBox(self.apply_filter, self.table.action_choose)
        yield Static(id="totals")
        yield Static(KEYS_HINT, id="keys")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.table.focus()
        self.show(self.top.frame)

    def on_screen_resume(self) -> None:
        self.show(self.top.frame)

    def on_resize(self) -> None:
        self.show(self.top.frame)

    # What each screen defines.
    def columns(self, spark: int) -> list[RowTableColumn]:
        raise NotImplementedError

    def row_key(self, row: Any) -> Hashable:
        raise NotImplementedError

    def rows(self, frame: Frame) -> Sequence[Any]:
        raise NotImplementedError

    def matches(self, row: Any, needle: str) -> bool:
        raise NotImplementedError

    def worst_first(self, row: Any) -> Any:
        raise NotImplementedError

    def fixed_width(self) -> int:
        raise NotImplementedError

    def sparks(self) -> int:
        return 2

    def open(self, key: Hashable) -> None:
        return None

    def show(self, frame: Frame | None) -> None:
        """Lay out `frame`: filter, sort, then hand the rows to the table (which formats only
        the visible ones)."""
        if not self.is_mounted:
            return
        width = self.size.width or 80
        spark = min(frame.history if frame else 30, (width - self.fixed_width()) // self.sparks())
        spark = spark if spark >= MIN_SPARK else 0
        if (spark, width) != (self.spark, self.laid_out):
            sorted_by = self.table.columns[self.sort_column].ident
            self.spark, self.laid_out = spark, width
            self.table.columns = self.columns(spark)
            idents = [column.ident for column in self.table.columns]
            self.sort_column = idents.index(sorted_by) if sorted_by in idents else 0
            if self.sort_column == 0:
                self.sort_column = self.default_sort
        rows = list(self.rows(frame)) if frame is not None else []
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [row for row in rows if self.matches(row, needle)]
        column = self.table.columns[min(self.sort_column, len(self.table.columns) - 1)]
        if column.sort_key is None or self.sort_column == self.default_sort:
            rows.sort(key=self.worst_first)
        else:
            rows.sort(key=column.sort_key, reverse=column.sorts_descending)
        self.table.sort_column = self.sort_column
        self.table.set_rows(rows)
        self.show_lines(frame)

    def show_lines(self, frame: Frame | None) -> None:
        now = self.top.clock()
        width = self.size.width or 80
        header = cells.poll_line(frame, now, self.top.paused, width)
        alert = cells.alert_line(frame, now)
        lines = runs_text(header)
        if alert:
            lines.append("\n")
            lines.append_text(runs_text(alert))
        self.query_one("#header", Static).update(lines)
        place = [(self.place, "bold")]
        if self.filter_text:
            place.append((f"  filter: {self.filter_text}", "cyan"))
        shown, total = len(self.table.rows), len(self.rows(frame)) if frame else 0
        place.append((f"  {shown} of {total} rows" if shown != total else f"  {total} rows", "dim"))
        if frame is not None:
            place.append((f"  a service needs {frame.min_healthy} healthy", "dim"))
        self.query_one("#place", Static).update(runs_text(place))
        self.query_one("#totals", Static).update(runs_text(cells.totals_line(frame, width)))
        self.query_one("#keys", Static).update(keys_hint(width))

    def action_back(self) -> None:
        """Esc: close the filter box and clear the filter, or clear an active filter, or go
        back a screen."""
        box = self.query_one("#filter", Input)
        if box.display or self.filter_text:
            self.apply_filter("")
        else:
            self.action_up()

    def action_up(self) -> None:
        """Backspace (outside the filter box, which takes it): back a screen."""
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
        else:
            self.top.back_to_live()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            raise SkipAction()
        box.value = self.filter_text
        box.display = True
        self.set_focus(box)

    def apply_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.query_one("#filter", Input).display = False
        self.table.cursor = 0
        self.set_focus(self.table)
        self.show(self.top.frame)

    def action_sort(self) -> None:
        count = len(self.table.columns)
        for step in range(1, count + 1):
            candidate = (self.sort_column + step) % count
            if self.table.columns[candidate].sort_key is not None:
                self.sort_by(candidate)
                return

    def sort_by(self, column: int) -> None:
        self.sort_column = column
        self.show(self.top.frame)

    def on_row_table_header_clicked(self, event: RowTable.HeaderClicked) -> None:
        self.sort_by(event.column)

    def on_row_table_chosen(self, event: RowTable.Chosen) -> None:
        self.open(event.key)
