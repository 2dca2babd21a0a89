"""The CPX API client: one `/servers` call, then one call per instance, concurrently.

aiohttp is imported by this package only, and this package only by commands that talk to the
API, so `--help` stays fast. All network failures of a single instance become an Unknown
instance with a reason; only an unusable `/servers` answer is fatal (`ApiUnreachable`).

Every request is bounded by `HttpSession` (`http.py`): a timeout per attempt (connect and
read), a size cap on the body, a few retries with exponential backoff and jitter for failures
that may pass (connection errors, timeouts, 5xx, 429), and per read of the fleet a retry budget
so retries cannot multiply the load and an optional deadline (`budget.py`). A retry's backoff
sleep holds no concurrency slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from cli_devops.client.budget import ReadBudget
from cli_devops.client.concurrency import CLOSE_LIMIT, AdaptiveLimiter, FixedLimiter, Ticket
from cli_devops.client.fanout import FanoutResult, acquire_within, read_all
from cli_devops.client.http import HttpSession, RetryHooks
from cli_devops.client.network import (
    HttpFailure,
)
from cli_devops.client.settings import ClientSettings
from cli_devops.errors import ApiUnreachable, PayloadError
from cli_devops.model import (
    Instance,
    ServerList,
    Snapshot,
    decode_json,
    parse_instance,
    parse_servers,
)

MAX_INSTANCE_BODY = 1024 * 1024
MAX_SERVERS_BODY = 16 * 1024 * 1024


class CpxClient:
    """An open connection pool to one CPX API; use as `async with CpxClient(settings) as client`.

    Raises SettingError at construction when the CA file or a proxy variable is unusable.
    Each read of the fleet has its own `ReadBudget` (`begin()`), so reads in flight at once
    (concurrent exporter scrapes) keep their own deadlines; they share the limiter, which
    bounds what all of them together ask of the API. HTTP itself (TLS, token, redirects, size
    caps, the retry loop) is `HttpSession`'s.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.http = HttpSession(settings, settings.log, self._first_answer)
        self._limiter: FixedLimiter | None = None

    @property
    def limiter(self) -> FixedLimiter:
        if self._limiter is None:
            raise RuntimeError("CpxClient used outside 'async with'")
        return self._limiter

    async def __aenter__(self) -> CpxClient:
        concurrency = self.settings.concurrency
        self._limiter = AdaptiveLimiter() if concurrency is None else FixedLimiter(concurrency)
        await self.http.__aenter__()
        return self

    def _first_answer(self, closes: bool) -> None:
        """A server that answers HTTP/1.0 or `Connection: close` opens a connection per request,
        the mark of a small server, often single-threaded with a short listen backlog: more
        than a few requests at once only get connection attempts dropped and retried a second
        later. The adaptive limit is capped for it (`CLOSE_LIMIT`)."""
        if closes and self._limiter is not None:
            self._limiter.cap(CLOSE_LIMIT)
            if self.settings.concurrency is None:
                self._log(
                    f"the server closes every connection: at most {CLOSE_LIMIT} requests at once"
                )

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.__aexit__(*exc_info)

    def begin(self, deadline: float | None = None, since: float | None = None) -> ReadBudget:
        """The budget of one read of the fleet: fresh retries, and `deadline` seconds (the
        settings' deadline when None) from `since` (a `time.monotonic()` value), or from now."""
        if deadline is None:
            deadline = self.settings.deadline
        return ReadBudget(self.settings.retries, deadline, since)

    async def snapshot(self, budget: ReadBudget | None = None) -> Snapshot:
        budget = budget or self.begin()
        listing = await self.servers(budget)
        read = await self.read(listing.ips, budget)
        return Snapshot(read.instances, listing.skipped, listing.duplicates)

    async def servers(self, budget: ReadBudget | None = None) -> ServerList:
        """The listing. Raises ApiUnreachable when it cannot be read or used."""
        budget = budget or self.begin()
        url = f"{self.settings.base_url}/servers"
        progress = budget.progress
        progress.listing_attempts += 1
        first = progress.listing_attempts

        async def again() -> bool:
            progress.listing_attempts += 1
            return True

        try:
            hooks = RetryHooks(resume=again)
            body = await self.http.request("/servers", MAX_SERVERS_BODY, budget, hooks=hooks)
        except HttpFailure as err:
            kind = "auth" if err.status in (401, 403) else "connect"
            if str(err) == "TLS certificate not trusted":
                kind = "tls"
            retries = progress.listing_attempts - first
            attempts = f" (after {retries + 1} attempts)" if retries else ""
            raise ApiUnreachable(
                f"cannot read the CPX API at {url}: {err}{attempts}.", kind=kind
            ) from err
        try:
            listing = parse_servers(decode_json(body))
        except PayloadError as err:
            raise ApiUnreachable(f"unusable answer from {url}: {err}", kind="answer") from err
        progress.listed = len(listing.ips)
        return listing

    async def instances(
        self, ips: Sequence[str], budget: ReadBudget | None = None
    ) -> Sequence[Instance]:
        """Read every instance; the results come in the order of `ips`, those not requested
        before the deadline with the deadline's reason."""
        return (await self.read(ips, budget or self.begin())).instances

    async def read(
        self, ips: Sequence[str], budget: ReadBudget, *, list_unrequested: bool = True
    ) -> FanoutResult:
        """Read every instance within `budget` (see `fanout.read_all`)."""
        limiter = self.limiter
        limiter.reset_stats()

        async def read_one(ip: str, ticket: Ticket) -> Instance:
            return await self._read_instance(ip, ticket, budget)

        read = await read_all(ips, limiter, budget, read_one, list_unrequested=list_unrequested)
        self._log(limiter.describe())
        return read

    async def _read_instance(self, ip: str, ticket: Ticket, budget: ReadBudget) -> Instance:
        """Read one instance in the slot `ticket` holds; every attempt gives its slot back
        before a backoff sleep and takes a new one after it."""
        limiter = self.limiter
        held: list[Ticket | None] = [ticket]

        def failed(err: HttpFailure) -> None:
            slot, held[0] = held[0], None
            if slot is not None:
                limiter.release(slot, congested=err.congested, cut=err.unanswered is not None)

        async def again() -> bool:
            held[0] = await acquire_within(limiter, budget)
            return held[0] is not None

        try:
            hooks = RetryHooks(failed=failed, resume=again)
            body = await self.http.request(f"/{ip}", MAX_INSTANCE_BODY, budget, hooks=hooks)
        except HttpFailure as err:
            return Instance(ip, None, None, None, str(err))
        except BaseException:
            if held[0] is not None:
                limiter.release(held[0], cut=True)
            raise
        if held[0] is not None:
            limiter.release(held[0])
        try:
            payload = decode_json(body)
        except PayloadError as err:
            return Instance(ip, None, None, None, str(err))
        return parse_instance(ip, payload)

    def _log(self, line: str) -> None:
        if self.settings.log is not None:
            self.settings.log(line)
