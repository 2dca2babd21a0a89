"""`FleetReading`: what one poll of the console holds, from a live `FleetSource` (the seam in
`sources/base.py`) or from a recording; and `SourcePolls`, the readings the console asks a
source for. The console never talks to an API itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cli_devops.errors import ApiUnreachable
from cli_devops.model import Instance
from cli_devops.redaction import redact

if TYPE_CHECKING:
    from cli_devops.sources.base import FleetSource


@dataclass(frozen=True)
class FleetReading:
    """One poll of the whole fleet: the instances as read (an unreadable one carries its
    `error`), or no instances and the poll's `error` when the fleet could not be read at all."""

    time: datetime
    instances: Sequence[Instance]
    error: str | None = None


class SourcePolls:
    """A `FleetSource` as the console uses it: opened at the first poll (on the feed's own loop)
    and closed by `aclose`; a fleet that cannot be read is a reading with its `error` (the
    console keeps the last data and marks it stale), never an exception."""

    def __init__(self, source: FleetSource, now: Callable[[], datetime]) -> None:
        self.source = source
        self.now = now
        self._open = False

    @property
    def name(self) -> str:
        """The header's name of the source: its URL, redacted like every URL shown."""
        return redact(self.source.name)

    @property
    def keeps_history(self) -> bool:
        """Whether `past` and `window` can answer (Prometheus); the console keeps its own polls
        for the others."""
        return self.source.keeps_history

    async def _opened(self) -> FleetSource:
        if not self._open:
            await self.source.__aenter__()
            self._open = True
        return self.source

    async def poll(self) -> FleetReading:
        source = await self._opened()
        moment = self.now()
        try:
            snapshot = await source.read()
        except ApiUnreachable as err:
            return FleetReading(moment, (), str(err.__cause__ or err))  # the header has the URL
        return FleetReading(moment, list(snapshot.instances))  # the screens go over it often

    async def past(self, samples: int, interval: float) -> list[FleetReading]:
        """The `samples - 1` steps, `interval` apart, before now (the first poll is the last
        sample); none when the source cannot say (the console then starts empty)."""
        if samples < 2 or not self.keeps_history:
            return []
        source = await self._opened()
        end = self.now().timestamp() - interval
        start = end - (samples - 2) * interval
        try:
            steps = await source.history(None, start, end, interval)
        except ApiUnreachable:
            return []
        return [readings_at(at, instances) for at, instances in steps]

    async def window(self, end: float, samples: int, interval: float) -> list[FleetReading]:
        """The fleet as it was at `end` (Unix seconds), after the `samples - 1` steps before it
        (the sparklines): the source's history for the steps, a read at `end` itself, so
        instances that could not be read then are there too."""
        source = await self._opened()
        readings: list[FleetReading] = []
        try:
            if samples >= 2:
                start = end - (samples - 1) * interval
                steps = await source.history(None, start, end - interval, interval)
                readings = [readings_at(at, instances) for at, instances in steps]
            snapshot = await source.read(at=end)
        except ApiUnreachable as err:
            return [*readings, FleetReading(_utc(end), (), str(err))]
        return [*readings, FleetReading(_utc(end), list(snapshot.instances))]

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            await self.source.__aexit__(None, None, None)


def readings_at(at: float, instances: Sequence[Instance]) -> FleetReading:
    return FleetReading(_utc(at), instances)


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
