"""`TopApp`: the Textual application that shows the frames a feed delivers.

The app owns no data and does no I/O: a feed thread delivers frames as messages (thread-safe),
the app keeps the latest and asks the screen on top to lay it out.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, Protocol

from rich.segment import Segment
from rich.style import Style
from textual.app import App
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.filter import Monochrome
from textual.message import Message

from cli_devops.top.frame_view import FrameView
from cli_devops.top.instance import InstanceScreen
from cli_devops.top.keys import HelpScreen
from cli_devops.top.screens import FleetScreen
from cli_devops.top.state import Frame

HEADER_TICK = 1.0
"""How often the ages in the header are brought up to date between polls."""


class Feed(Protocol):
    """A feed thread (`feed.LiveFeed`, `feed.ReplayFeed`) as the app drives it."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def poll_now(self) -> None: ...
    def pause(self, paused: bool) -> None: ...
    def step(self, offset: int) -> None: ...
    def travel(self, offset: int) -> None: ...
    def jump(self, moment: datetime) -> None: ...
    def live(self) -> None: ...


class FrameReady(Message):
    def __init__(self, frame: Frame) -> None:
        super().__init__()
        self.frame = frame


class Said(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class FeedFailed(Message):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class PlainMonochrome(Monochrome):
    """Textual's monochrome filter (`--no-color`, NO_COLOR), for segments without a style too."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        plain = Style()
        return super().apply(
            [Segment(text, style or plain, control) for text, style, control in segments],
            background,
        )


class TopApp(App[None]):
    CSS = """
    #header { height: auto; max-height: 2; background: $boost; }
    #place { height: 1; margin-top: 1; }
    #filter { dock: bottom; height: 1; border: none; padding: 0 1; margin-bottom: 2; }
    #totals { dock: bottom; height: 1; margin-bottom: 1; }
    #keys { dock: bottom; height: 1; color: $text-muted; }
    #body { height: 1fr; }
    #help { width: 100; max-width: 100%; height: auto; padding: 1 2; }
    #help { border: round $accent; background: $panel; }
    HelpScreen { align: center middle; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "interrupt", "Quit", priority=True, show=False),
        Binding("question_mark", "help", "Help"),
        Binding("p", "pause", "Pause"),
        Binding("r", "poll_now", "Poll now"),
        Binding("left", "step(-1)", show=False),
        Binding("right", "step(1)", show=False),
        Binding("t", "travel(1)", "Sample on", show=False),
        Binding("T", "travel(-1)", "Sample back", show=False),
        Binding("b", "branch", "Go to a time", show=False),
        Binding("L", "live", "Live", show=False),
    ]
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        make_feed: Callable[[TopApp], Feed],
        *,
        clock: Callable[[], float],
        player: bool = False,
        color: bool = True,
    ) -> None:
        super().__init__()
        # Textual's own filter for NO_COLOR fails on a segment without a style; ours does not.
        self._filters = [
            PlainMonochrome() if isinstance(kept, Monochrome) else kept for kept in self._filters
        ]
        if not color and not self.no_color:  # --no-color as Textual takes NO_COLOR
            self.no_color = True
            self._filters.append(PlainMonochrome())
        self.make_feed = make_feed
        self.clock = clock
        self.player = player
        self.frame: Frame | None = None
        self.latest: Frame | None = None
        self.paused = False
        self.failure: BaseException | None = None
        self.stopped_by: int | None = None
        self.feed: Feed | None = None

    # Called from the feed's thread.
    def deliver(self, frame: Frame) -> None:
        self.post_message(FrameReady(frame))

    def crashed(self, error: BaseException) -> None:
        self.post_message(FeedFailed(error))

    def say(self, text: str) -> None:
        self.post_message(Said(text))

    def on_said(self, message: Said) -> None:
        self.notify(message.text, severity="warning", timeout=4)

    # Called from a signal handler, on the main thread where the app's loop runs.
    def stop_by_signal(self, signum: int) -> None:
        """SIGTERM, SIGHUP or SIGINT: leave as `q` does (terminal restored), then exit 128 + n."""
        if self.stopped_by is None:
            self.stopped_by = signum
            self.call_next(self.exit)

    def on_mount(self) -> None:
        self.push_screen(FleetScreen())
        self.feed = self.make_feed(self)
        self.feed.start()
        self.set_interval(HEADER_TICK, self._tick)

    def on_unmount(self) -> None:
        self._stop_feed()

    def _stop_feed(self) -> None:
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.stop()

    def on_frame_ready(self, message: FrameReady) -> None:
        frame = message.frame
        if not frame.historic:
            self.latest = frame
            if self.paused and not self.player:
                self._tick()
                return
        self.frame = frame
        self._show()

    def on_feed_failed(self, message: FeedFailed) -> None:
        self.failure = message.error
        self._stop_feed()
        self.exit()

    def _show(self) -> None:
        screen = self.screen
        if isinstance(screen, (FrameView, InstanceScreen)):
            screen.show(self.frame)

    def _tick(self) -> None:
        screen = self.screen
        if isinstance(screen, FrameView):
            screen.show_lines(self.frame)
        elif isinstance(screen, InstanceScreen):
            screen.show(self.frame)

    async def action_quit(self) -> None:
        self._stop_feed()
        self.exit()

    async def action_interrupt(self) -> None:
        """Ctrl+C: quit as `q` does, with Ctrl+C's exit status (130)."""
        self.stopped_by = signal.SIGINT
        await self.action_quit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        if not self.player and self.frame is not None and self.frame.historic:
            self.action_live()
            return
        self.paused = not self.paused
        if self.feed is not None:
            self.feed.pause(self.paused)
        if not self.player and not self.paused and self.latest is not None:
            self.frame = self.latest
        self._show()

    def action_poll_now(self) -> None:
        if self.feed is not None:
            self.feed.poll_now()

    def action_step(self, offset: int) -> None:
        if self.paused and self.feed is not None:
            self.feed.step(offset)

    def action_travel(self, offset: int) -> None:
        if self.player:
            self.paused = True
        if self.feed is not None:
            self.feed.travel(offset)

    def action_live(self) -> None:
        """Back to live (in a replay: play on)."""
        self.paused = False
        if self.feed is not None:
            self.feed.live()
        self._show()

    def back_to_live(self) -> None:
        """Esc on the fleet screen: out of the past (not out of a replay)."""
        if not self.player and self.frame is not None and self.frame.historic:
            self.action_live()

    def action_branch(self) -> None:
        from cli_devops.top.prompt import TimePrompt

        if self.frame is None or self.frame.moment is None or isinstance(self.screen, TimePrompt):
            return
        self.push_screen(TimePrompt(self.frame.moment), self._jump)

    def _jump(self, moment: datetime | None) -> None:
        if moment is None:
            return
        if self.player:
            self.paused = True
        if self.feed is not None:
            self.feed.jump(moment)
