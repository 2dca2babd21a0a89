"""Driving the `top` console headless (Textual's pilot) in tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text

from cli_devops.environment import Environment
from cli_devops.run_config import RunConfig
from cli_devops.settings import ClientSettings
from cli_devops.top.app import TopApp
from cli_devops.top.command import Session, TopOptions, prepare
from cli_devops.top.frame_view import FrameView


def session(url: str, **options: Any) -> Session:
    app = RunConfig(
        ClientSettings(base_url=url, retries=0, timeout=2.0), env=Environment(color=True)
    )
    return prepare(app, TopOptions(**options))


async def until(pilot: Any, check: Callable[[], object], timeout: float = 30.0) -> None:
    """Let the app run until `check()` is true; fail after `timeout` seconds (a hang)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the console did not get there in time"
        await pilot.pause(0.05)
        await asyncio.sleep(0)


def table_lines(console: TopApp) -> list[str]:
    """The table as drawn: header first, then the visible rows (trailing blanks dropped)."""
    screen = console.screen
    assert isinstance(screen, FrameView)
    table = screen.table
    lines = [table.render_line(y).text.rstrip() for y in range(table.size.height)]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def static_text(console: TopApp, selector: str) -> str:
    content = console.screen.query_one(selector).content  # type: ignore[attr-defined]
    return content.plain if isinstance(content, Text) else str(content)


def cells_of(line: str) -> list[str]:
    return line.split()
