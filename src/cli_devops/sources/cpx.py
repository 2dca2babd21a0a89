"""`CpxSource`: the `FleetSource` of the CPX API (and of the simulator `--demo` starts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from cli_devops.client import ClientSettings, CpxClient, ReadProgress, Snapshot
from cli_devops.model import Instance
from cli_devops.sources.base import Unsupported
from cli_devops.text import plural


class CpxSource:
    """The CPX API through one `CpxClient` (one connection pool) for the whole run. It keeps no
    history. `watch`, when given, is called with the progress of each read every `every`
    seconds while it runs (a progress line). `since`, when given, is when the settings' deadline
    counts from (a `time.monotonic()` value: the process's start), instead of each read's start.
    """

    keeps_history = False

    def __init__(
        self,
        settings: ClientSettings,
        watch: Callable[[ReadProgress], None] | None = None,
        every: float = 0.1,
        since: float | None = None,
    ) -> None:
        self.settings = settings
        self.client = CpxClient(settings)
        self._watch = watch
        self._every = every
        self._since = since

    @property
    def name(self) -> str:
        return self.settings.base_url

    async def __aenter__(self) -> CpxSource:
        await self.client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.client.__aexit__(exc_type, exc, tb)

    async def read(
        self,
        deadline: float | None = None,
        owns: Callable[[str], bool] | None = None,
        at: float | None = None,
        answer_cost: float = 0.0,
    ) -> Snapshot:
        if at is not None:
            raise Unsupported(f"the CPX API at {self.name} keeps no history")
        client = self.client
        budget = client.begin(deadline, since=self._since if deadline is None else None)
        budget.answer_cost = answer_cost  # each instance read brings the deadline earlier
        watching = None
        if self._watch is not None:
            watching = asyncio.ensure_future(self._report(budget.progress))
        try:
            listing = await client.servers(budget)
            ips = listing.ips if owns is None else [ip for ip in listing.ips if owns(ip)]
            read = await client.read(ips, budget)
        finally:
            if watching is not None:
                watching.cancel()
        return Snapshot(
            read.instances,
            listing.skipped,
            listing.duplicates,
            unrequested=read.unrequested,
            notes=listing_notes(listing.skipped, listing.duplicates),
        )

    async def _report(self, progress: ReadProgress) -> None:
        assert self._watch is not None
        while True:
            await asyncio.sleep(self._every)
            self._watch(progress)

    async def history(
        self, service: str | None, start: float, end: float, step: float
    ) -> list[tuple[float, list[Instance]]]:
        raise Unsupported(f"the CPX API at {self.name} keeps no history")

    def focus(self, service: str | None) -> None:
        """The API has no per-service listing: every read reads the whole fleet."""


def listing_notes(skipped: int, duplicates: int) -> tuple[str, ...]:
    notes = []
    if skipped:
        what = "that is not an IP address" if skipped == 1 else "that are not IP addresses"
        notes.append(f"skipped {plural(skipped, '/servers entry', '/servers entries')} {what}")
    if duplicates:
        entries = plural(duplicates, "duplicate /servers entry", "duplicate /servers entries")
        notes.append(f"ignored {entries}")
    return tuple(notes)
