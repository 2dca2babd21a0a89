"""Where `top` gets the fleet from: the `FleetSource` seam, and the CPX API behind it.

The console never talks to an API itself: it asks a source for one `FleetReading` per poll. A source
for another backend (Prometheus, say) only has to implement `FleetSource`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from cli_devops.errors import ApiUnreachable
from cli_devops.model import Instance
from cli_devops.redaction import redact

if TYPE_CHECKING:
    from cli_devops.client import CpxClient
    from cli_devops.settings import ClientSettings


@dataclass(frozen=True)
class FleetReading:
    """One poll of the whole fleet: the instances as read (an unreadable one carries its
    `error`), or no instances and the poll's `error` when the fleet could not be read at all."""

    time: datetime
    instances: Sequence[Instance]
    error: str | None = None


class FleetSource(Protocol):
    """What `top` polls. `poll` returns a failed read as a `FleetReading` with `error` set (the
    console keeps the last data and marks it stale); it raises only for a bug."""

    @property
    def name(self) -> str:
        """Shown in the console's header: the API's URL, for instance."""
        ...

    async def poll(self) -> FleetReading: ...

    async def aclose(self) -> None:
        """Release connections; the source is not polled again."""
        ...


class CpxSource:
    """The CPX API through the tool's own client, one connection pool for the whole run."""

    def __init__(self, settings: ClientSettings, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.now = now
        self._client: CpxClient | None = None

    @property
    def name(self) -> str:
        """The header's name of the source: its URL, redacted like every URL shown."""
        return redact(self.settings.base_url)

    async def poll(self) -> FleetReading:
        from cli_devops.client import CpxClient

        if self._client is None:
            self._client = await CpxClient(self.settings).__aenter__()
        moment = self.now()
        try:
            snapshot = await self._client.snapshot()
        except ApiUnreachable as err:
            return FleetReading(moment, (), str(err.__cause__ or err))  # the header shows the URL
        return FleetReading(moment, snapshot.instances)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.__aexit__(None, None, None)
