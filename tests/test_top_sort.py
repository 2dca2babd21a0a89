"""`top`'s sort markers: in every sort state exactly one column is marked, ▼ (largest or worst
first) or ▲ (A to Z), and its rows are in that order."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from cli_devops.top.screens import FrameView, ServiceScreen

from .top_helpers import session, table_lines, until

SEVERITY = {"Unhealthy": 0, "Unknown": 1, "Healthy": 2}


def columns_of(console: Any) -> tuple[str, list[list[str]]]:
    """The marked column's title and every row's cells, cut at the table's column widths."""
    screen = console.screen
    assert isinstance(screen, FrameView)
    lines = table_lines(console)
    widths = screen.table._widths
    cut = []
    for line in lines:
        cells, start = [], 0
        for width in widths:
            cells.append(line[start : start + width].strip())
            start += width + 1
        cut.append(cells)
    return lines[0], cut


def value(text: str) -> Any:
    if text in SEVERITY:
        return SEVERITY[text]
    if re.fullmatch(r"\d+/\d+", text):
        return tuple(int(part) for part in text.split("/"))
    if re.fullmatch(r"\d+%?", text):
        return int(text.rstrip("%"))
    if re.fullmatch(r"[\d.]+", text) and text.count(".") == 3:  # an IP
        return tuple(int(part) for part in text.split("."))
    if text == "-":
        return -1
    return text.lower()


def check_sort_state(console: Any) -> str:
    """The marked column's title, after checking its rows are in the order it shows."""
    header, (titles, *rows) = columns_of(console)
    marked = [n for n, title in enumerate(titles) if title.endswith(("▲", "▼"))]
    assert len(marked) == 1, header
    column = marked[0]
    title = titles[column]
    shown = [value(row[column]) for row in rows]
    if title.startswith("Status"):  # worst first
        assert shown == sorted(shown), (title, shown)
        assert title.endswith("▼")
    elif title.startswith("Note"):  # the instances with a note first
        assert [bool(v) for v in shown] == sorted((bool(v) for v in shown), reverse=True)
        assert title.endswith("▼")
    elif title.endswith("▲"):
        assert shown == sorted(shown), (title, shown)
    else:
        assert shown == sorted(shown, reverse=True), (title, shown)
    return title


def test_every_sort_state_is_marked_as_it_is_ordered(sim):
    async def scenario() -> None:
        console = session(sim.url, interval=0.2).console
        async with console.run_test(size=(130, 30)) as pilot:
            await until(pilot, lambda: console.frame is not None and console.frame.polls >= 2)
            await pilot.press("p")  # hold still while the orders are compared
            seen = []
            for _ in range(8):
                seen.append(check_sort_state(console))
                await pilot.press("s")
            assert seen == ["Status▼", "Service▲", "Healthy▼", "Unhealthy▼", "Unknown▼",
                            "Outliers▼", "CPU avg▼", "Mem avg▼"]  # fmt: skip
            assert columns_of(console)[1][0][0] == "Status▼"  # and round again
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(console.screen, ServiceScreen))
            seen = []
            for _ in range(5):
                seen.append(check_sort_state(console))
                await pilot.press("s")
            assert seen == ["Status▼", "CPU▼", "Mem▼", "Note▼", "IP▲"]
            await pilot.press("q")

    asyncio.run(scenario())
