"""`RowTable`: a keyboard-driven table that lays out only the rows on screen.

Textual's DataTable measures and stores every cell of every row; at 10,000 instances that is
most of a key press's budget. Here the rows are plain data and a column knows how to turn one
row into text; each repaint formats the visible rows only (Textual's line API), so moving,
filtering and sorting cost the same at 10 rows as at 10,000.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

Cell = list[tuple[str, str]]
"""Runs of (text, style) that make one cell."""


@dataclass(frozen=True)
class RowTableColumn:
    title: str
    cell: Callable[[Any, int], Cell]
    """The cell of a row, at the column's width."""
    width: int = 0
    """Fixed width; 0: as wide as its widest visible cell (at most `max_width`)."""
    right: bool = False
    sort_key: Callable[[Any], Any] | None = None
    """Key of an ascending sort by this column; None: the column does not sort."""
    max_width: int = 40
    measure: Callable[[Any], int] | None = None
    """The natural width of a row's cell, for width 0."""
    descending: bool | None = None
    """Sort largest first; None: numbers (right-aligned) largest first, text A to Z."""
    name: str = ""
    """What the column stays when its title is abbreviated (the sort follows it); "": title."""
    marker: str = ""
    """The header's sort marker when the order is neither (worst first is ▼); "": from
    `descending`."""

    @property
    def ident(self) -> str:
        return self.name or self.title

    @property
    def sorts_descending(self) -> bool:
        return self.right if self.descending is None else self.descending

    @property
    def sort_marker(self) -> str:
        """▼ largest (or worst) first, ▲ smallest (or A) first, as k9s marks its sort."""
        return self.marker or ("▼" if self.sorts_descending else "▲")


@functools.lru_cache(maxsize=256)
def style(spec: str) -> Style:
    return Style.parse(spec) if spec.strip() else Style.null()


def fit(text: str, width: int, right: bool = False) -> str:
    """`text` padded or cut (with an ellipsis) to exactly `width` cells."""
    size = cell_len(text)
    if size > width:
        return text[: max(width - 1, 0)] + "…" if width > 0 else ""
    padding = " " * (width - size)
    return padding + text if right else text + padding


class RowTable(Widget, can_focus=True):
    """Rows with a cursor; Enter posts `RowTable.Chosen`, a header click `RowTable.HeaderClicked`.

    The cursor stays on the same row (by key) when the rows are replaced.
    """

    DEFAULT_CSS = """
    RowTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "edge(-1)", show=False),
        Binding("end", "edge(1)", show=False),
        Binding("enter", "choose", "Open", show=False),
    ]

    class Chosen(Message):
        def __init__(self, key: Hashable) -> None:
            super().__init__()
            self.key = key

    class HeaderClicked(Message):
        def __init__(self, column: int) -> None:
            super().__init__()
            self.column = column

    def __init__(self, columns: Sequence[RowTableColumn], key: Callable[[Any], Hashable]) -> None:
        super().__init__()
        self.columns: list[RowTableColumn] = list(columns)
        self.key = key
        self.rows: Sequence[Any] = ()
        self.cursor = 0
        self.top = 0
        self.sort_column: int | None = None
        self.empty_text = "No rows."
        self._widths: list[int] = []

    @property
    def body_height(self) -> int:
        return max(self.size.height - 1, 1)

    @property
    def current(self) -> Any | None:
        return self.rows[self.cursor] if self.rows else None

    def set_rows(self, rows: Sequence[Any]) -> None:
        """Replace the rows, keeping the cursor on the row it was on when that is still there."""
        chosen = self.current
        self.rows = rows
        if chosen is not None:
            wanted = self.key(chosen)
            for index, row in enumerate(rows):
                if self.key(row) == wanted:
                    self.cursor = index
                    break
        self._clamp()
        self.refresh()

    def _clamp(self) -> None:
        self.cursor = min(max(self.cursor, 0), max(len(self.rows) - 1, 0))
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + self.body_height:
            self.top = self.cursor - self.body_height + 1
        self.top = max(0, min(self.top, max(len(self.rows) - self.body_height, 0)))

    def action_move(self, offset: int) -> None:
        self.cursor += offset
        self._clamp()
        self.refresh()

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.body_height)

    def action_edge(self, direction: int) -> None:
        self.action_move(direction * len(self.rows))

    def action_choose(self) -> None:
        if self.rows:
            self.post_message(self.Chosen(self.key(self.rows[self.cursor])))

    def on_resize(self, event: events.Resize) -> None:
        self._clamp()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.action_move(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.action_move(-3)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            start = 0
            for index, width in enumerate(self._widths):
                if start <= offset.x < start + width + 1:
                    if self.columns[index].sort_key is not None:
                        self.post_message(self.HeaderClicked(index))
                    return
                start += width + 1
            return
        row = self.top + offset.y - 1
        if row < len(self.rows):
            self.cursor = row
            self._clamp()
            self.refresh()

    def visible_rows(self) -> Sequence[Any]:
        return self.rows[self.top : self.top + self.body_height]

    def _layout(self, width: int) -> list[int]:
        """Column widths for the visible rows; the last column takes what is left."""
        visible = self.visible_rows()
        widths = []
        for column in self.columns:
            title = cell_len(column.title) + (column.sort_key is not None)  # room for ▲/▼
            size = max(column.width, title)
            if column.width == 0:
                natural = [column.measure(row) for row in visible] if column.measure else []
                size = min(max([title, *natural]), column.max_width)
            widths.append(size)
        used = sum(widths) + len(widths) - 1
        for index, column in enumerate(self.columns):  # measured columns give way, to a title
            if used <= width:
                break
            if column.width == 0:
                floor = cell_len(column.title) + (column.sort_key is not None)
                given = min(used - width, widths[index] - floor)
                widths[index] -= max(given, 0)
                used -= max(given, 0)
        if widths:
            widths[-1] = max(widths[-1], width - used + widths[-1])
        return widths

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            self._widths = self._layout(width)
            return self._header(width)
        index = self.top + y - 1
        if index >= len(self.rows):
            if not self.rows and y == 1:
                return Strip([Segment(fit(self.empty_text, width), style("dim"))])
            return Strip.blank(width)
        if not self._widths:
            self._widths = self._layout(width)
        row = self.rows[index]
        base = style("reverse") if index == self.cursor and self.has_focus else Style.null()
        if index == self.cursor and not self.has_focus:
            base = style("underline")
        segments: list[Segment] = []
        for number, (column, size) in enumerate(zip(self.columns, self._widths, strict=False)):
            if number:
                segments.append(Segment(" ", base))
            segments.extend(self._cell(column.cell(row, size), size, column.right, base))
        return Strip(segments).crop_extend(0, width, base)

    def _cell(self, runs: Cell, width: int, right: bool, base: Style) -> list[Segment]:
        text = "".join(part for part, _ in runs)
        if len(runs) == 1 or cell_len(text) > width:
            return [Segment(fit(text, width, right), base + style(runs[0][1] if runs else ""))]
        pad = " " * (width - cell_len(text))
        out = [Segment(pad, base)] if right and pad else []
        out.extend(Segment(part, base + style(spec)) for part, spec in runs)
        if pad and not right:
            out.append(Segment(pad, base))
        return out

    def _header(self, width: int) -> Strip:
        segments: list[Segment] = []
        for number, (column, size) in enumerate(zip(self.columns, self._widths, strict=False)):
            if number:
                segments.append(Segment(" "))
            title = column.title + (column.sort_marker if number == self.sort_column else "")
            segments.append(Segment(fit(title, size, column.right), style("bold")))
        return Strip(segments).crop_extend(0, width, None)
