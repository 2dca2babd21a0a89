"""The console's screens: the fleet (one row per service), a service (one row per instance),
an instance (its history at length), and the key help."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from textual.widgets import Input

from cli_devops.history import ROW_ORDER
from cli_devops.text import terminal_safe
from cli_devops.top import cells
from cli_devops.top.frame_view import FrameView, plain
from cli_devops.top.instance import InstanceScreen
from cli_devops.top.state import KEY_SEPARATOR, Frame, InstanceRow, ServiceRow, key_title
from cli_devops.top.table import Cell, RowTableColumn

NARROW = 100
"""Below this width the fleet's count columns take short titles."""
DELTAS_FROM = 90
STATS_FROM = 70
"""The width from which a service screen shows its Δ and its min/avg/max columns: in a
narrower terminal the sparklines go first, then the Δ columns, then min/avg/max."""
SERVICE_SCREEN = "top-service"
INSTANCE_SCREEN = "top-instance"


def _count_cell(value: int, spec: str) -> Cell:
    return [(str(value), spec if value else "")]


def _service_order(row: ServiceRow) -> tuple[int, int, int, int, int, str, str]:
    return (
        row.note is None,  # a context that could not be read
        row.status != "Unhealthy",
        -row.unhealthy,
        -row.unknown,
        -row.outliers,
        row.context or "",
        row.service,
    )


def _service_cell(row: ServiceRow, width: int) -> Cell:
    if row.note is not None:
        return plain(terminal_safe(row.note), "yellow")
    return plain(terminal_safe(row.service), "bold")


def _healthy_text(row: ServiceRow) -> str:
    """`63/64`: healthy of the service's instances (what a reader takes `a/b` for)."""
    return f"{row.healthy}/{row.instances}"


def _number(value: float | None) -> float:
    return -1.0 if value is None else value


class FleetScreen(FrameView):
    """One row per service, worst first."""

    place = "Fleet"
    default_sort = 0
    with_contexts = False

    def show(self, frame: Frame | None) -> None:
        contexts = bool(frame and frame.contexts)
        if contexts != self.with_contexts:  # the Context column comes or goes
            self.with_contexts = contexts
            self.spark = -1
        super().show(frame)

    def columns(self, spark: int) -> list[RowTableColumn]:
        frame = self.top.frame
        limits = frame.thresholds if frame else None
        cpu_limit = limits.cpu if limits else 90.0
        memory_limit = limits.memory if limits else 90.0
        min_healthy = frame.min_healthy if frame else 2
        status: Callable[[ServiceRow, int], Cell] = lambda r, w: plain(  # noqa: E731
            r.status, cells.STYLES.get(r.status, "")
        )
        short = self._narrow()
        result = [
            RowTableColumn("Status", status, width=9, sort_key=_service_order, marker="▼"),
            RowTableColumn(
                "Service",
                _service_cell,
                sort_key=lambda r: r.service.lower(),
                measure=lambda r: len(r.note or r.service),
            ),
            RowTableColumn(
                "Healthy",
                lambda r, w: plain(
                    _healthy_text(r), "" if r.healthy >= min_healthy else "bold red"
                ),
                right=True,
                sort_key=lambda r: (r.healthy, r.instances),
                measure=lambda r: len(_healthy_text(r)),
            ),
            RowTableColumn(
                "Unh" if short else "Unhealthy",
                lambda r, w: _count_cell(r.unhealthy, "bold red"),
                name="Unhealthy",
                right=True,
                sort_key=lambda r: r.unhealthy,
            ),
            RowTableColumn(
                "Unk" if short else "Unknown",
                lambda r, w: _count_cell(r.unknown, "yellow"),
                name="Unknown",
                right=True,
                sort_key=lambda r: r.unknown,
            ),
            RowTableColumn(
                "Out" if short else "Outliers",
                lambda r, w: _count_cell(r.outliers, "bold magenta"),
                name="Outliers",
                right=True,
                sort_key=lambda r: r.outliers,
            ),
            RowTableColumn(
                "CPU" if short else "CPU avg",
                lambda r, w: cells.alarm_cell(r.cpu_avg, cpu_limit),
                name="CPU avg",
                width=4,
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
                "Mem" if short else "Mem avg",
                lambda r, w: cells.alarm_cell(r.memory_avg, memory_limit),
                name="Mem avg",
                width=4,
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
        if frame is not None and frame.contexts:
            result.insert(1, RowTableColumn(
                "Context",
                lambda r, w: plain(terminal_safe(r.context or ""), "cyan"),
                sort_key=lambda r: (r.context or "").lower(),
                measure=lambda r: len(r.context or ""),
                max_width=20,
            ))  # fmt: skip
        return result

    def _narrow(self) -> bool:
        """Below 100 columns the counts and averages take short titles (Unh, Unk, Out, CPU,
        Mem), so that every column of the fleet fits 80."""
        return (self.size.width or 80) < NARROW

    def fixed_width(self) -> int:
        # Status, Service (20), Healthy, the counts, CPU and Mem, the spaces between them
        frame = self.top.frame
        counts = (16 if self._narrow() else 27) + (8 if self._narrow() else 16)
        return 9 + 20 + 8 + counts + 10 + (12 if frame and frame.contexts else 0)

    def row_key(self, row: ServiceRow) -> Hashable:
        return row.key

    def rows(self, frame: Frame) -> Sequence[ServiceRow]:
        return frame.services

    def matches(self, row: ServiceRow, needle: str) -> bool:
        return needle in row.service.lower() or needle in (row.context or "").lower()

    def worst_first(self, row: ServiceRow) -> Any:
        return _service_order(row)

    def open(self, key: Hashable) -> None:
        if str(key).endswith(KEY_SEPARATOR):  # a context that could not be read: no services
            return
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
        self.place = f"Fleet › {key_title(service)}"

    def retarget(self, service: str) -> None:
        """Show `service` from the top, unfiltered, worst first."""
        self.service = service
        self.place = f"Fleet › {key_title(service)}"
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
                marker="▼",
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
        width = self.size.width or 80
        stats, deltas = width >= STATS_FROM, width >= DELTAS_FROM
        if stats:
            result.append(
                RowTableColumn("min avg max", lambda r, w: cells.stats_cell(r.cpu_stats), width=11)
            )
        if deltas:
            result.append(
                RowTableColumn("Δ", lambda r, w: cells.delta_cell(r.cpu_delta), width=3, right=True)
            )
        result += [
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
        if stats:
            result.append(
                RowTableColumn(
                    "min avg max", lambda r, w: cells.stats_cell(r.memory_stats), width=11
                )
            )
        if deltas:
            result.append(
                RowTableColumn(
                    "Δ", lambda r, w: cells.delta_cell(r.memory_delta), width=3, right=True
                )
            )
        result.append(
            RowTableColumn(
                "Note",
                self._note,
                sort_key=lambda r: (r.outlier, r.error is not None),
                descending=True,
            )
        )
        return result

    def _note(self, row: InstanceRow, width: int) -> Cell:
        frame = self.top.frame
        return cells.note(row, frame) if frame else plain("")

    def fixed_width(self) -> int:
        return 15 + 9 + 4 + 11 + 3 + 4 + 11 + 3 + 12 + 20 + 9

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
