"""The CPX API client: one `/servers` call, then one call per instance, concurrently.

aiohttp is imported here only, and this package is imported only by commands that talk to the
API, so `--help` stays fast. All network failures of a single instance become an Unknown
instance with a reason; only an unusable `/servers` answer is fatal (`ApiUnreachable`).

Every request is bounded: a timeout per attempt (connect and read), a size cap on the body,
a few retries with exponential backoff and jitter for failures that may pass (connection errors,
timeouts, 5xx, 429), and per read of the fleet a retry budget so retries cannot multiply the
load and an optional deadline (`budget.py`). A retry's backoff sleep holds no concurrency slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import NamedTuple

import aiohttp
from yarl import URL

from cli_devops.client.budget import ReadBudget
from cli_devops.client.concurrency import CLOSE_LIMIT, AdaptiveLimiter, FixedLimiter, Ticket
from cli_devops.client.fanout import FanoutResult, acquire_within, read_all
from cli_devops.client.network import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    HttpFailure,
    Network,
    describe,
    read_capped,
    status_failure,
)
from cli_devops.client.settings import ClientSettings
from cli_devops.errors import ApiUnreachable, PayloadError
from cli_devops.model import Instance, ServerList, decode_json, parse_instance, parse_servers

MAX_INSTANCE_BODY = 1024 * 1024
MAX_SERVERS_BODY = 16 * 1024 * 1024


class Snapshot(NamedTuple):
    """One read of the whole fleet; instances sorted by IP, those the deadline left unrequested
    (`unrequested` of them, with the deadline's reason) last. `notes`: what the reader should
    tell the user besides (entries skipped, targets down)."""

    instances: list[Instance]
    skipped: int
    duplicates: int
    unrequested: int = 0
    notes: tuple[str, ...] = ()

    @property
    def unread(self) -> list[Instance]:
        return [instance for instance in self.instances if instance.error is not None]


class RequestFailed(Exception):
    """A `CpxClient.get_bytes` request that failed after its retries; the message is the reason.

    `status` is the HTTP status when there was one.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class CpxClient:
    """An open connection pool to one CPX API; use as `async with CpxClient(settings) as client`.

    Raises SettingError at construction when the CA file or a proxy variable is unusable.
    Each read of the fleet has its own `ReadBudget` (`begin()`), so reads in flight at once
    (concurrent exporter scrapes) keep their own deadlines; they share the limiter, which
    bounds what all of them together ask of the API.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.network = Network(settings, self._log)
        self._session: aiohttp.ClientSession | None = None
        self._limiter: FixedLimiter | None = None
        self._watch: aiohttp.TraceConfig | None = None

    @property
    def limiter(self) -> FixedLimiter:
        if self._limiter is None:
            raise RuntimeError("CpxClient used outside 'async with'")
        return self._limiter

    async def __aenter__(self) -> CpxClient:
        concurrency = self.settings.concurrency
        self._limiter = AdaptiveLimiter() if concurrency is None else FixedLimiter(concurrency)
        # limit=0: the limiter bounds the requests, and so the connections, in flight; idle
        # keep-alive connections are reused by the next request.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        watch = aiohttp.TraceConfig()
        watch.on_request_end.append(self._on_first_response)
        self._watch = watch
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            headers={
                "Accept": "application/json",
                "Accept-Encoding": "identity",
                "User-Agent": "cli_devops",
            },
            raise_for_status=False,
            # A compressed answer could inflate far past the size cap before it is counted.
            auto_decompress=False,
            trace_configs=[watch],
        )
        # aiohttp silently repeats an idempotent request once when the server drops the
        # connection; with that off, every attempt is one of ours and counts in the budget.
        # aiohttp 3.14 (checked) has no public setting for it; its own test client sets this.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        return self

    async def _on_first_response(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        """Learn from the first answer whether the server keeps connections open, then stop
        tracing (tracing costs a few percent per request).

        A server that answers HTTP/1.0 or `Connection: close` opens a connection per request,
        the mark of a small server, often single-threaded with a short listen backlog: more
        than a few requests at once only get connection attempts dropped and retried a second
        later. The adaptive limit is capped for it (`CLOSE_LIMIT`).
        """
        if self._watch is None:
            return
        with contextlib.suppress(ValueError):
            getattr(session, "trace_configs", []).remove(self._watch)
        self._watch = None
        response = params.response
        header = response.headers.get("Connection", "")
        tokens = {token.strip().lower() for token in header.split(",")}
        version = response.version
        old = version is not None and version < aiohttp.HttpVersion11
        if self._limiter is not None and (
            "close" in tokens or (old and "keep-alive" not in tokens)
        ):
            self._limiter.cap(CLOSE_LIMIT)
            if self.settings.concurrency is None:
                self._log(
                    f"the server closes every connection: at most {CLOSE_LIMIT} requests at once"
                )

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    def begin(self, deadline: float | None = None) -> ReadBudget:
        """The budget of one read of the fleet: fresh retries, and `deadline` seconds from now
        (the settings' deadline when None)."""
        if deadline is None:
            deadline = self.settings.deadline
        return ReadBudget(self.settings.retries, deadline)

    async def snapshot(self, budget: ReadBudget | None = None) -> Snapshot:
        budget = budget or self.begin()
        listing = await self.servers(budget)
        read = await self.read(listing.ips, budget)
        return Snapshot(read.instances, listing.skipped, listing.duplicates)

    async def servers(self, budget: ReadBudget | None = None) -> ServerList:
        """The listing. Raises ApiUnreachable when it cannot be read or used."""
        budget = budget or self.begin()
        url = f"{self.settings.base_url}/servers"
        budget.request_made()
        retries = 0
        while True:
            budget.progress.listing_attempts += 1
            try:
                body = await self._get("/servers", MAX_SERVERS_BODY, budget)
                break
            except HttpFailure as err:
                wait = budget.retry_wait(err.retriable, err.retry_after, retries)
                if wait is None:
                    kind = "auth" if err.status in (401, 403) else "connect"
                    if str(err) == "TLS certificate not trusted":
                        kind = "tls"
                    attempts = f" (after {retries + 1} attempts)" if retries else ""
                    raise ApiUnreachable(
                        f"cannot read the CPX API at {url}: {err}{attempts}.", kind=kind
                    ) from err
                retries += 1
                self._log_retry("/servers", retries, wait)
                await asyncio.sleep(wait)
        try:
            listing = parse_servers(decode_json(body))
        except PayloadError as err:
            raise ApiUnreachable(f"unusable answer from {url}: {err}", kind="answer") from err
        budget.progress.listed = len(listing.ips)
        return listing

    async def instances(
        self, ips: Sequence[str], budget: ReadBudget | None = None
    ) -> list[Instance]:
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
        path = f"/{ip}"
        budget.request_made()
        retries = 0
        while True:
            try:
                body = await self._get(path, MAX_INSTANCE_BODY, budget)
            except HttpFailure as err:
                limiter.release(ticket, congested=err.congested, cut=err.unanswered is not None)
                wait = budget.retry_wait(err.retriable, err.retry_after, retries)
                if wait is None:
                    if err.retriable and retries < budget.retries and budget.spent:
                        self._log("retry budget of this read is spent: not retrying")
                    return Instance(ip, None, None, None, str(err))
                retries += 1
                self._log_retry(path, retries, wait)
                await asyncio.sleep(wait)
                again = await acquire_within(limiter, budget)
                if again is None:
                    return Instance(ip, None, None, None, budget.reason())
                ticket = again
                continue
            except BaseException:
                limiter.release(ticket, cut=True)
                raise
            limiter.release(ticket)
            try:
                payload = decode_json(body)
            except PayloadError as err:
                return Instance(ip, None, None, None, str(err))
            return parse_instance(ip, payload)

    async def get_bytes(self, path: str, cap: int, budget: ReadBudget) -> bytes:
        """GET the base URL + `path` (an encoded query string may follow) with this client's
        timeouts, TLS and token, retried within `budget`: the body, at most `cap` bytes,
        undecoded. For a second fleet source that reuses this HTTP set-up (Prometheus).

        Raises RequestFailed with the reason of the last attempt.
        """
        budget.request_made()
        retries = 0
        while True:
            try:
                return await self._get(path, cap, budget)
            except HttpFailure as err:
                wait = budget.retry_wait(err.retriable, err.retry_after, retries)
                if wait is None:
                    raise RequestFailed(str(err), err.status) from None
                retries += 1
                self._log_retry(path, retries, wait)
                await asyncio.sleep(wait)

    def _log_retry(self, path: str, retries: int, wait: float) -> None:
        self._log(
            f"GET {self.settings.base_url}{path}: retry {retries} of "
            f"{self.settings.retries} in {wait:.2f}s"
        )

    async def _get(self, path: str, cap: int, budget: ReadBudget) -> bytes:
        """One attempt: GET with redirects followed, the body read up to `cap` bytes."""
        if self._session is None:
            raise RuntimeError("CpxClient used outside 'async with'")
        limit = self.settings.timeout
        remaining = budget.remaining()
        if remaining is not None and remaining <= 0:
            raise HttpFailure(budget.reason(), unanswered="deadline")
        cut_by_deadline = remaining is not None and remaining < limit
        if remaining is not None:
            limit = min(limit, remaining)
        ends = time.monotonic() + limit
        network = self.network
        url = self.settings.base_url + path
        target: str | URL = network.target(path)
        for _hop in range(MAX_REDIRECTS + 1):
            started = time.monotonic()
            try:
                async with self._session.get(
                    target,
                    allow_redirects=False,
                    headers=network.auth_headers(url),
                    timeout=aiohttp.ClientTimeout(total=max(ends - started, 0.001)),
                    proxy=network.proxy_for(url),
                    ssl=network.tls,
                ) as response:
                    status = response.status
                    location = (
                        response.headers.get("Location") if status in REDIRECT_STATUSES else None
                    )
                    retry_after = response.headers.get("Retry-After")
                    encoding = response.headers.get("Content-Encoding", "identity")
                    body = b"" if location else await read_capped(response, cap)
            except asyncio.TimeoutError:
                if cut_by_deadline:
                    self._log(f"GET {url} -> {budget.reason()}")
                    raise HttpFailure(budget.reason(), unanswered="deadline") from None
                reason = f"timed out after {self.settings.timeout:g}s"
                self._log(f"GET {url} -> {reason}")
                raise HttpFailure(reason, retriable=True, unanswered="timeout") from None
            except aiohttp.ClientError as err:
                self._log(f"GET {url} -> {type(err).__name__}: {err}")
                reason, retriable = describe(err)
                raise HttpFailure(reason, retriable=retriable) from None
            if self.settings.log is not None:
                self._log(f"GET {url} -> {status} in {(time.monotonic() - started) * 1000:.1f} ms")
            if location:
                url = target = network.redirect_target(url, location)
                continue
            if status != 200:
                raise status_failure(status, retry_after)
            if encoding.strip().lower() != "identity":
                raise HttpFailure("answer is compressed, which was not asked for")
            return body
        raise HttpFailure(f"more than {MAX_REDIRECTS} redirects")

    def _log(self, line: str) -> None:
        if self.settings.log is not None:
            self.settings.log(line)
