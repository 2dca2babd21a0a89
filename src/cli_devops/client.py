"""The CPX API client: one `/servers` call, then one call per instance, concurrently.

aiohttp is imported here only, and this module is imported only by commands that talk to the
API, so `--help` stays fast. All network failures of a single instance become an Unknown
instance with a reason; only an unusable `/servers` answer is fatal (`ApiUnreachable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple
from urllib.parse import urlsplit

import aiohttp

from cli_devops.concurrency import CLOSE_LIMIT, AdaptiveLimiter, FixedLimiter, Ticket
from cli_devops.errors import ApiUnreachable, PayloadError, UsageError
from cli_devops.model import Instance, ServerList, ip_sort_key, parse_instance, parse_servers

MAX_INSTANCE_BODY = 1024 * 1024
MAX_SERVERS_BODY = 16 * 1024 * 1024
_CONGESTION_REASONS = ("timed out", "connection failed", "server closed", "HTTP 429", "HTTP 503")


def normalize_base_url(raw: str) -> str:
    """Accept `host:port`, `http://host:port/`, IPv6 literals in brackets; return `scheme://host:port`."""
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise UsageError(f"invalid --cp-url {raw!r}: {err}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid --cp-url {raw!r}: expected http://HOST:PORT")
    if parts.query or parts.fragment:
        raise UsageError(f"invalid --cp-url {raw!r}: no query or fragment allowed")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    timeout: float = 5.0
    concurrency: int | None = None
    """Requests in flight at once; None adapts it to the API (see `concurrency.py`)."""
    log: Callable[[str], None] | None = None


class Snapshot(NamedTuple):
    """One read of the whole fleet; instances sorted by IP."""

    instances: list[Instance]
    skipped: int
    duplicates: int

    @property
    def unread(self) -> list[Instance]:
        return [instance for instance in self.instances if instance.error is not None]


class _HttpFailure(Exception):
    """A request that produced no usable JSON; the message is the short reason."""


class CpxClient:
    """An open connection pool to one CPX API; use as `async with CpxClient(settings) as client`."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._limiter: FixedLimiter | None = None
        self._watch: aiohttp.TraceConfig | None = None

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
            headers={"Accept": "application/json", "User-Agent": "cli_devops"},
            raise_for_status=False,
            trace_configs=[watch],
        )
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

    async def servers(self) -> ServerList:
        url = f"{self.settings.base_url}/servers"
        try:
            payload = await self._get_json("/servers", MAX_SERVERS_BODY)
            return parse_servers(payload)
        except _HttpFailure as err:
            raise ApiUnreachable(
                f"cannot read the CPX API at {url}: {err}. "
                "Check --cp-url (or CPX_URL), or try --demo to use the bundled simulator."
            ) from err
        except PayloadError as err:
            raise ApiUnreachable(f"unusable answer from {url}: {err}") from err

    async def instance(self, ip: str) -> Instance:
        """Read one instance, waiting for a free slot of the concurrency limit."""
        limiter = self._limiter_or_raise()
        return await self._read_instance(ip, limiter, await limiter.acquire())

    async def _read_instance(self, ip: str, limiter: FixedLimiter, ticket: Ticket) -> Instance:
        """Read one instance in the slot `ticket` holds, and give the slot back."""
        try:
            payload = await self._get_json(f"/{ip}", MAX_INSTANCE_BODY)
        except _HttpFailure as err:
            reason = str(err)
            limiter.release(ticket, congested=reason.startswith(_CONGESTION_REASONS))
            return Instance(ip, None, None, None, reason)
        except BaseException:
            limiter.release(ticket)
            raise
        limiter.release(ticket)
        return parse_instance(ip, payload)

    def _limiter_or_raise(self) -> FixedLimiter:
        if self._limiter is None:
            raise RuntimeError("CpxClient used outside 'async with'")
        return self._limiter

    async def snapshot(self) -> Snapshot:
        listing = await self.servers()
        return Snapshot(await self.instances(listing.ips), listing.skipped, listing.duplicates)

    async def instances(self, ips: Iterable[str]) -> list[Instance]:
        """Read every instance, sorted by IP.

        A task is started only once the limiter grants it a slot, so memory holds the results
        and at most one task per request in flight, not one waiting task per instance.
        """
        limiter = self._limiter_or_raise()
        limiter.reset_stats()
        results: list[Instance] = []
        running: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        async def read(ip: str, ticket: Ticket) -> None:
            results.append(await self._read_instance(ip, limiter, ticket))

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:
                failures.append(error)

        try:
            for ip in ips:
                ticket = await limiter.acquire()
                if failures:
                    limiter.release(ticket)
                    break
                task = asyncio.ensure_future(read(ip, ticket))
                running.add(task)
                task.add_done_callback(finished)
            while running:
                await asyncio.wait(list(running))
        finally:
            for task in list(running):
                task.cancel()
        if failures:
            raise failures[0]
        self._log(limiter.describe())
        return sorted(results, key=lambda instance: ip_sort_key(instance.ip))

    async def _get_json(self, path: str, cap: int) -> object:
        assert self._session is not None, "CpxClient used outside 'async with'"
        url = self.settings.base_url + path
        started = time.monotonic()
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                body = await _read_capped(response, cap)
                status = response.status
        except asyncio.TimeoutError:
            self._log(f"GET {url} -> timeout after {self.settings.timeout:g}s")
            raise _HttpFailure(f"timed out after {self.settings.timeout:g}s") from None
        except aiohttp.ClientError as err:
            self._log(f"GET {url} -> {type(err).__name__}: {err}")
            raise _HttpFailure(_describe(err)) from None
        self._log(f"GET {url} -> {status} in {(time.monotonic() - started) * 1000:.1f} ms")
        if status != 200:
            raise _HttpFailure(f"HTTP {status}")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise _HttpFailure("answer is not valid JSON") from None

    def _log(self, line: str) -> None:
        if self.settings.log is not None:
            self.settings.log(line)


class _TooLarge(aiohttp.ClientError):
    pass


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Read the body, failing as soon as it exceeds `cap` bytes (never buffering more)."""
    if response.content_length is not None and response.content_length > cap:
        raise _TooLarge("response too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise _TooLarge("response too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(err: aiohttp.ClientError) -> str:
    if isinstance(err, _TooLarge):
        return "response too large"
    if isinstance(err, aiohttp.ClientConnectorError):
        os_error = err.os_error
        reason = os.strerror(os_error.errno) if os_error.errno else str(os_error)
        return f"connection failed: {reason.lower()}"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(err, aiohttp.ClientPayloadError):
        return "truncated answer"
    return type(err).__name__


def fetch_snapshot(settings: ClientSettings) -> Snapshot:
    """Read the whole fleet once (blocking)."""

    async def run() -> Snapshot:
        async with CpxClient(settings) as client:
            return await client.snapshot()

    return asyncio.run(run())
