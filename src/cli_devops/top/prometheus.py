"""`top`'s fleet source over Prometheus: the same `FleetReading` per poll as from CPX, and the past
window of the sparklines before the first poll, so the console opens with full history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from cli_devops.errors import ApiUnreachable
from cli_devops.redaction import redact
from cli_devops.top.source import FleetReading

if TYPE_CHECKING:
    from cli_devops.settings import PrometheusSettings
    from cli_devops.sources.prometheus import PrometheusSource


class PrometheusTopSource:
    """A `FleetSource` reading Prometheus through one `PrometheusSource` for the whole run."""

    def __init__(self, settings: PrometheusSettings, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.now = now
        self._source: PrometheusSource | None = None

    @property
    def name(self) -> str:
        return redact(self.settings.client.base_url)

    async def _open(self) -> PrometheusSource:
        from cli_devops.sources.prometheus import PrometheusSource

        if self._source is None:
            self._source = await PrometheusSource(self.settings).__aenter__()
        return self._source

    async def poll(self) -> FleetReading:
        source = await self._open()
        moment = self.now()
        try:
            snapshot = await source.snapshot()
        except ApiUnreachable as err:
            return FleetReading(moment, (), str(err))
        return FleetReading(moment, snapshot.instances)

    async def past(self, samples: int, interval: float) -> list[FleetReading]:
        """The `samples - 1` steps, `interval` apart, before now (the first poll is the last
        sample); none when Prometheus cannot say (the console then starts empty, as from CPX)."""
        if samples < 2:
            return []
        source = await self._open()
        end = self.now().timestamp() - interval
        start = end - (samples - 2) * interval
        try:
            steps = await source.history(None, start, end, interval)
        except ApiUnreachable:
            return []
        return [
            FleetReading(datetime.fromtimestamp(at, timezone.utc), instances)
            for at, instances in steps
        ]

    async def window(self, end: float, samples: int, interval: float) -> list[FleetReading]:
        """The fleet as it was at `end` (Unix seconds), after the `samples - 1` steps before it
        (the sparklines): range queries for the steps, an instant query for `end` itself, so
        instances that could not be read then are there too."""
        source = await self._open()
        moment = datetime.fromtimestamp(end, timezone.utc)
        readings = []
        try:
            if samples >= 2:
                start = end - (samples - 1) * interval
                steps = await source.history(None, start, end - interval, interval)
                readings = [
                    FleetReading(datetime.fromtimestamp(at, timezone.utc), instances)
                    for at, instances in steps
                ]
            read = await source.read(end)
        except ApiUnreachable as err:
            return [*readings, FleetReading(moment, (), str(err))]
        return [*readings, FleetReading(moment, read.snapshot.instances)]

    async def aclose(self) -> None:
        if self._source is not None:
            source, self._source = self._source, None
            await source.__aexit__(None, None, None)
