"""The console's screens: the fleet (one row per service), a service (one row per instance),
an instance (its history at length), and the key help."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from cli_devops.history import ROW_ORDER
from cli_devops.text import terminal_safe
from cli_devops.top import cells
from cli_devops.top.cells import runs_text
from cli_devops.top.instance import InstanceScreen
from cli_devops.top.keys import KEYS_HINT
from cli_devops.top.state import Frame, InstanceRow, ServiceRow
from cli_devops.top.table import Cell, RowTable, RowTableColumn

MIN_SPARK = 6
SERVICE_SCREEN = "top-service"
INSTANCE_SCREEN = "top-instance"


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


class FrameView(Screen[None]):
    """A screen with the poll header, a filterable, sortable table and the fleet's totals."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "back", "Back", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("s", "sort", "Sort", show=False),
    ]
    place = "Fleet"
    default_sort = 0

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort_column = self.default_sort
        self.spark = -1
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
        if spark != self.spark:
            self.spark = spark
            self.table.columns = self.columns(spark)
        rows = list(self.rows(frame)) if frame is not None else []
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [row for row in rows if self.matches(row, needle)]
        column = self.table.columns[self.sort_column]
        if column.sort_key is None or self.sort_column == self.default_sort:
            rows.sort(key=self.worst_first)
        else:
            rows.sort(key=column.sort_key, reverse=column.right)
        self.table.sort_column = self.sort_column
        self.table.set_rows(rows)
        self.show_lines(frame)

    def show_lines(self, frame: Frame | None) -> None:
        now = self.top.clock()
        header = cells.poll_line(frame, now, self.top.paused)
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
        self.query_one("#place", Static).update(runs_text(place))
        self.query_one("#totals", Static).update(runs_text(cells.totals_line(frame)))

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.table.focus()
        elif len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = self.filter_text
        box.display = True
        box.focus()

    def apply_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.query_one("#filter", Input).display = False
        self.table.cursor = 0
        self.table.focus()
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


def _count_cell(value: int, spec: str) -> Cell:
    return [(str(value), spec if value else "")]


def _service_order(row: ServiceRow) -> tuple[int, int, int, int, str]:
    return (row.status != "Unhealthy", -row.unhealthy, -row.unknown, -row.outliers, row.service)


def _number(value: float | None) -> float:
    return -1.0 if value is None else value


class FleetScreen(FrameView):
    """One row per service, worst first."""

    place = "Fleet"
    default_sort = 0

    def columns(self, spark: int) -> list[RowTableColumn]:
        frame = self.top.frame
        limits = frame.thresholds if frame else None
        cpu_limit = limits.cpu if limits else 90.0
        memory_limit = limits.memory if limits else 90.0
        min_healthy = frame.min_healthy if frame else 2
        status: Callable[[ServiceRow, int], Cell] = lambda r, w: plain(  # noqa: E731
            r.status, cells.STYLES.get(r.status, "")
        )
        result = [
            RowTableColumn("Status", status, width=9, sort_key=_service_order),
            RowTableColumn(
                "Service",
                lambda r, w: plain(terminal_safe(r.service), "bold"),
                sort_key=lambda r: r.service.lower(),
                measure=lambda r: len(r.service),
            ),
            RowTableColumn(
                "Inst",
                lambda r, w: plain(str(r.instances)),
                width=5,
                right=True,
                sort_key=lambda r: r.instances,
            ),
            RowTableColumn(
                "Healthy",
                lambda r, w: plain(
                    f"{r.healthy}/{min_healthy}", "" if r.healthy >= min_healthy else "bold red"
                ),
                width=7,
                right=True,
                sort_key=lambda r: r.healthy,
            ),
            RowTableColumn(
                "Unhealthy",
                lambda r, w: _count_cell(r.unhealthy, "bold red"),
                width=9,
                right=True,
                sort_key=lambda r: r.unhealthy,
            ),
            RowTableColumn(
                "Unknown",
                lambda r, w: _count_cell(r.unknown, "yellow"),
                width=7,
                right=True,
                sort_key=lambda r: r.unknown,
            ),
            RowTableColumn(
                "Outliers",
                lambda r, w: _count_cell(r.outliers, "bold magenta"),
                width=8,
                right=True,
                sort_key=lambda r: r.outliers,
            ),
            RowTableColumn(
                "CPU avg",
                lambda r, w: cells.alarm_cell(r.cpu_avg, cpu_limit),
                width=7,
                right=True,
                sort_key=lambda r: _number(r.cpu_avg),
            ),
        ]
        if spark:
            result.append(
                RowTableColumn(
                    "trend", lambda r, w: cells.trend_cell(r.cpu_trend, w, cpu_limit), spark
                )
            )
        result.append(
            RowTableColumn(
                "Mem avg",
                lambda r, w: cells.alarm_cell(r.memory_avg, memory_limit),
                width=7,
                right=True,
                sort_key=lambda r: _number(r.memory_avg),
            )
        )
        if spark:
            result.append(
                RowTableColumn(
                    "trend", lambda r, w: cells.trend_cell(r.memory_trend, w, memory_limit), spark
                )
            )
        return result

    def fixed_width(self) -> int:
        return 9 + 20 + 5 + 7 + 9 + 7 + 8 + 7 + 7 + 12

    def row_key(self, row: ServiceRow) -> Hashable:
        return row.service

    def rows(self, frame: Frame) -> Sequence[ServiceRow]:
        return frame.services

    def matches(self, row: ServiceRow, needle: str) -> bool:
        return needle in row.service.lower()

    def worst_first(self, row: ServiceRow) -> Any:
        return _service_order(row)

    def open(self, key: Hashable) -> None:
        # One service screen, installed once and pointed at each service opened: building and
        # styling a new screen for every Enter is most of a drill-down's time.
        if self.app.is_screen_installed(SERVICE_SCREEN):
            screen = self.app.get_screen(SERVICE_SCREEN)
            assert isinstance(screen, ServiceScreen)
            screen.retarget(str(key))
        else:
            self.app.install_screen(ServiceScreen(str(key)), SERVICE_SCREEN)
        self.app.push_screen(SERVICE_SCREEN)


def _instance_order(row: InstanceRow) -> tuple[int, float, tuple[int, int]]:
    load = max(row.cpu or 0.0, row.memory or 0.0)
    return (ROW_ORDER.get(row.status, 9), -load, row.order)


class ServiceScreen(FrameView):
    """One row per instance of one service: the service's instances only."""

    default_sort = 1

    def __init__(self, service: str) -> None:
        self.service = service
        super().__init__()
        self.place = f"Fleet › {terminal_safe(service)}"

    def retarget(self, service: str) -> None:
        """Show `service` from the top, unfiltered, worst first."""
        self.service = service
        self.place = f"Fleet › {terminal_safe(service)}"
        self.filter_text = ""
        self.sort_column = self.default_sort
        self.table.rows = ()
        self.table.cursor = self.table.top = 0
        if self.is_mounted:
            self.query_one("#filter", Input).display = False
            self.table.focus()

    def columns(self, spark: int) -> list[RowTableColumn]:
        frame = self.top.frame
        cpu_limit = frame.thresholds.cpu if frame else 90.0
        memory_limit = frame.thresholds.memory if frame else 90.0
        result = [
            RowTableColumn(
                "IP",
                lambda r, w: plain(r.ip),
                sort_key=lambda r: r.order,
                measure=lambda r: len(r.ip),
            ),
            RowTableColumn(
                "Status",
                lambda r, w: plain(r.status, cells.STYLES.get(r.status, "")),
                width=9,
                sort_key=_instance_order,
            ),
            RowTableColumn(
                "CPU",
                lambda r, w: cells.alarm_cell(r.cpu, cpu_limit),
                width=4,
                right=True,
                sort_key=lambda r: _number(r.cpu),
            ),
        ]
        if spark:
            result.append(
                RowTableColumn(
                    "trend", lambda r, w: cells.trend_cell(r.cpu_trend, w, cpu_limit), spark
                )
            )
        result += [
            RowTableColumn("min avg max", lambda r, w: cells.stats_cell(r.cpu_stats), width=11),
            RowTableColumn("Δ", lambda r, w: cells.delta_cell(r.cpu_delta), width=3, right=True),
            RowTableColumn(
                "Mem",
                lambda r, w: cells.alarm_cell(r.memory, memory_limit),
                width=4,
                right=True,
                sort_key=lambda r: _number(r.memory),
            ),
        ]
        if spark:
            result.append(
                RowTableColumn(
                    "trend", lambda r, w: cells.trend_cell(r.memory_trend, w, memory_limit), spark
                )
            )
        result += [
            RowTableColumn("min avg max", lambda r, w: cells.stats_cell(r.memory_stats), width=11),
            RowTableColumn("Δ", lambda r, w: cells.delta_cell(r.memory_delta), width=3, right=True),
            RowTableColumn("Note", self._note, sort_key=lambda r: (not r.outlier, r.error is None)),
        ]
        return result

    def _note(self, row: InstanceRow, width: int) -> Cell:
        frame = self.top.frame
        return cells.note(row, frame) if frame else plain("")

    def fixed_width(self) -> int:
        return 15 + 9 + 4 + 11 + 3 + 4 + 11 + 3 + 12 + 20

    def row_key(self, row: InstanceRow) -> Hashable:
        return row.ip

    def rows(self, frame: Frame) -> Sequence[InstanceRow]:
        return frame.instances.get(self.service, ())

    def matches(self, row: InstanceRow, needle: str) -> bool:
        return needle in row.ip.lower() or needle in row.status.lower()

    def worst_first(self, row: InstanceRow) -> Any:
        return _instance_order(row)

    def open(self, key: Hashable) -> None:
        if self.app.is_screen_installed(INSTANCE_SCREEN):
            screen = self.app.get_screen(INSTANCE_SCREEN)
            assert isinstance(screen, InstanceScreen)
            screen.retarget(self.service, str(key))
        else:
            self.app.install_screen(InstanceScreen(self.service, str(key)), INSTANCE_SCREEN)
        self.app.push_screen(INSTANCE_SCREEN)
