"""The CPX API client: one `/servers` call, then one call per instance, concurrently.

aiohttp is imported here only, and this module is imported only by commands that talk to the
API, so `--help` stays fast. All network failures of a single instance become an Unknown
instance with a reason; only an unusable `/servers` answer is fatal (`ApiUnreachable`).

Every request is bounded: a timeout per attempt (connect and read), a size cap on the body,
a few retries with exponential backoff and jitter for failures that may pass (connection errors,
timeouts, 5xx, 429), a retry budget per read of the fleet so retries cannot multiply the load,
and an optional deadline for the whole read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

import aiohttp
from yarl import URL

from cli_devops.concurrency import CLOSE_LIMIT, AdaptiveLimiter, FixedLimiter, Ticket
from cli_devops.errors import ApiUnreachable, PayloadError, UsageError
from cli_devops.model import (
    Instance,
    ServerList,
    decode_json,
    parse_instance,
    parse_servers,
)
from cli_devops.settings import ClientSettings

MAX_INSTANCE_BODY = 1024 * 1024
MAX_SERVERS_BODY = 16 * 1024 * 1024

BACKOFF_FIRST = 0.1
"""The first wait before a retry is 0.1-0.2 s (jitter), then it doubles, up to BACKOFF_CAP."""
BACKOFF_CAP = 2.0
RETRY_AFTER_LIMIT = 10.0
"""A Retry-After longer than this is not waited for: the request fails with the reason."""
RETRY_BUDGET_MIN = 10
RETRY_BUDGET_RATIO = 0.2
"""Retries per read of the fleet: RETRY_BUDGET_MIN plus this fraction of the requests made, so a
failing API sees at most about 1.2 times the requests of a healthy one, never 1 + retries times."""
MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
_SECONDS = re.compile(r"[0-9]{1,10}")


def normalize_base_url(raw: str) -> str:
    """Accept `host:port`, `http://host:port/`, IPv6 literals in brackets; return `scheme://host:port`.

    Raises UsageError in the tool's words (the caller names the option or variable it came from).
    """
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid URL {raw!r}: {_port_problem(text)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid URL {raw!r}: expected http://HOST:PORT")
    if parts.query or parts.fragment:
        raise UsageError(f"invalid URL {raw!r}: no query or fragment allowed")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _port_problem(url: str) -> str:
    """Why urlsplit refused `url`, said plainly (its own messages name its internals)."""
    netloc = urlsplit(url).netloc
    port = netloc.rpartition("]")[2].rpartition(":")[2] if ":" in netloc else ""
    if port and not port.isdigit():
        return f"port {port!r} is not a number"
    if port:
        return f"port {port} is outside 1-65535"
    return "expected http://HOST:PORT"


class Snapshot(NamedTuple):
    """One read of the whole fleet; instances sorted by IP."""

    instances: list[Instance]
    skipped: int
    duplicates: int

    @property
    def unread(self) -> list[Instance]:
        return [instance for instance in self.instances if instance.error is not None]


class _HttpFailure(Exception):
    """A request that produced no usable JSON; the message is the short reason.

    `retriable` says whether another attempt may succeed; `retry_after` is how long the server
    asked to wait (seconds), `status` the HTTP status when there was one.
    """

    def __init__(
        self,
        reason: str,
        *,
        retriable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.retriable = retriable
        self.retry_after = retry_after
        self.status = status

    @property
    def congested(self) -> bool:
        """Whether the failure means "too much load" to the concurrency limiter: a timeout, a
        refused, reset or dropped connection, a truncated answer, or HTTP 429/503."""
        return self.retriable and (self.status is None or self.status in (429, 503))


class CpxClient:
    """An open connection pool to one CPX API; use as `async with CpxClient(settings) as client`.

    Raises UsageError at construction when --ca-cert or a proxy variable is unusable.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._tls = _tls_setting(settings)
        _check_proxies(settings.proxies)
        self._origin = _origin(settings.base_url)
        self._base_url = URL(settings.base_url)
        self._base_path = self._base_url.raw_path.rstrip("/")
        self._proxied = any(settings.proxies.get(scheme) for scheme in ("http", "https"))
        self._retry_tokens = float(RETRY_BUDGET_MIN)
        self._deadline: float | None = settings.deadline
        self._deadline_at: float | None = None
        self._jitter = random.Random()
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
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        self._start_run()
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

    async def servers(self, deadline: float | None = None) -> ServerList:
        """The listing; reading it starts a read of the fleet (fresh retry budget and deadline).

        `deadline` (seconds) bounds this read instead of the settings' deadline, e.g. the
        exporter's scrape timeout: what is not read by then fails with the deadline's reason.
        """
        self._start_run(deadline)
        url = f"{self.settings.base_url}/servers"
        try:
            payload = await self._get_json("/servers", MAX_SERVERS_BODY)
            return parse_servers(payload)
        except _HttpFailure as err:
            hint = (
                "Check --token (or CPX_TOKEN)."
                if err.status in (401, 403)
                else "Check --cp-url (or CPX_URL), or try --demo to use the bundled simulator."
            )
            raise ApiUnreachable(f"cannot read the CPX API at {url}: {err}. {hint}") from err
        except PayloadError as err:
            raise ApiUnreachable(f"unusable answer from {url}: {err}") from err

    async def _read_instance(self, ip: str, limiter: FixedLimiter, ticket: Ticket) -> Instance:
        """Read one instance in the slot `ticket` holds, and give the slot back."""
        try:
            payload = await self._get_json(f"/{ip}", MAX_INSTANCE_BODY)
        except _HttpFailure as err:
            limiter.release(ticket, congested=err.congested)
            return Instance(ip, None, None, None, str(err))
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

    async def instances(self, ips: Sequence[str]) -> list[Instance]:
        """Read every instance; the results come in the order of `ips`.

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
        position = {ip: index for index, ip in enumerate(ips)}
        return sorted(results, key=lambda instance: position[instance.ip])

    def _start_run(self, deadline: float | None = None) -> None:
        """Begin one read of the fleet: a fresh retry budget and deadline."""
        self._retry_tokens = float(RETRY_BUDGET_MIN)
        if deadline is None:
            deadline = self.settings.deadline
        self._deadline = deadline
        self._deadline_at = None if deadline is None else time.monotonic() + deadline

    def _remaining(self) -> float | None:
        return None if self._deadline_at is None else self._deadline_at - time.monotonic()

    async def _get_json(self, path: str, cap: int) -> object:
        """GET `path` and decode it, retrying failures that another attempt may cure.

        Waits between attempts grow exponentially with jitter, or follow Retry-After; the run's
        retry budget and deadline bound the total. Raises _HttpFailure with the last reason.
        """
        self._retry_tokens += RETRY_BUDGET_RATIO
        retries = 0
        while True:
            try:
                body = await self._get(path, cap)
                break
            except _HttpFailure as failure:
                wait = self._retry_wait(failure, retries)
                if wait is None:
                    raise
                retries += 1
                self._retry_tokens -= 1
                self._log(
                    f"GET {self.settings.base_url}{path}: retry {retries} of "
                    f"{self.settings.retries} in {wait:.2f}s"
                )
                await asyncio.sleep(wait)
        try:
            return decode_json(body)
        except PayloadError as err:
            raise _HttpFailure(str(err)) from None

    def _retry_wait(self, failure: _HttpFailure, retries: int) -> float | None:
        """Seconds to wait before retrying, or None when this failure is final."""
        if not failure.retriable or retries >= self.settings.retries:
            return None
        if self._retry_tokens < 1:
            self._log("retry budget of this run is spent: not retrying")
            return None
        wait = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0**retries * self._jitter.uniform(1.0, 2.0))
        if failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        remaining = self._remaining()
        if remaining is not None and wait >= remaining:
            return None
        return wait

    async def _get(self, path: str, cap: int) -> bytes:
        """One attempt: GET with redirects followed, the body read up to `cap` bytes."""
        assert self._session is not None, "CpxClient used outside 'async with'"
        limit = self.settings.timeout
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            raise _HttpFailure(self._deadline_reason())
        cut_by_deadline = remaining is not None and remaining < limit
        if remaining is not None:
            limit = min(limit, remaining)
        ends = time.monotonic() + limit
        url = self.settings.base_url + path
        # A ready URL object: aiohttp would otherwise parse and re-encode the string every
        # request (paths here are "/servers" or an IP that parse_servers validated).
        target: str | URL = self._base_url.with_path(self._base_path + path, encoded=True)
        for _hop in range(MAX_REDIRECTS + 1):
            started = time.monotonic()
            try:
                async with self._session.get(
                    target,
                    allow_redirects=False,
                    headers=self._auth_headers(url),
                    timeout=aiohttp.ClientTimeout(total=max(ends - started, 0.001)),
                    proxy=_proxy_for(url, self.settings.proxies) if self._proxied else None,
                    ssl=self._tls,
                ) as response:
                    status = response.status
                    location = (
                        response.headers.get("Location") if status in _REDIRECT_STATUSES else None
                    )
                    retry_after = response.headers.get("Retry-After")
                    encoding = response.headers.get("Content-Encoding", "identity")
                    body = b"" if location else await _read_capped(response, cap)
            except asyncio.TimeoutError:
                reason = (
                    self._deadline_reason()
                    if cut_by_deadline
                    else f"timed out after {self.settings.timeout:g}s"
                )
                self._log(f"GET {url} -> {reason}")
                raise _HttpFailure(reason, retriable=not cut_by_deadline) from None
            except aiohttp.ClientError as err:
                self._log(f"GET {url} -> {type(err).__name__}: {err}")
                reason, retriable = _describe(err)
                raise _HttpFailure(reason, retriable=retriable) from None
            if self.settings.log is not None:
                self._log(f"GET {url} -> {status} in {(time.monotonic() - started) * 1000:.1f} ms")
            if location:
                url = target = self._redirect_target(url, location)
                continue
            if status != 200:
                raise _status_failure(status, retry_after)
            if encoding.strip().lower() != "identity":
                raise _HttpFailure("answer is compressed, which was not asked for")
            return body
        raise _HttpFailure(f"more than {MAX_REDIRECTS} redirects")

    def _redirect_target(self, url: str, location: str) -> str:
        target = ""
        try:
            target = urljoin(url, location.strip())
            scheme, host, _port = _origin(target)
        except ValueError:
            scheme = host = ""
        if scheme not in ("http", "https") or not host or not location.isprintable():
            raise _HttpFailure("redirected to an invalid URL")
        if self.settings.token and _origin(target) != self._origin:
            self._log(f"redirect leaves {self.settings.base_url}: the token is not sent")
        return target

    def _auth_headers(self, url: str) -> dict[str, str]:
        """The Bearer header, for the origin of --cp-url only (never for a redirect elsewhere)."""
        if self.settings.token and _origin(url) == self._origin:
            return {"Authorization": f"Bearer {self.settings.token}"}
        return {}

    def _deadline_reason(self) -> str:
        return f"deadline of {self._deadline or 0:g}s reached"

    def _log(self, line: str) -> None:
        if self.settings.log is not None:
            self.settings.log(line)


class _TooLarge(aiohttp.ClientError):
    pass


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Read the body, failing as soon as it exceeds `cap` bytes (never buffering more)."""
    length = response.content_length
    if length is not None:
        if length > cap:
            raise _TooLarge("response too large")
        # The parser stops at the declared length: one read, no chunk loop.
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise _TooLarge("response too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(err: aiohttp.ClientError) -> tuple[str, bool]:
    """The short reason for a failed request, and whether another attempt may succeed."""
    reason, retriable = type(err).__name__, False
    if isinstance(err, _TooLarge):
        reason = "response too large"
    elif isinstance(err, aiohttp.ClientConnectorCertificateError):
        reason = "TLS certificate not trusted (see --ca-cert)"
    elif isinstance(err, aiohttp.ClientSSLError):
        reason = "TLS handshake failed"
    elif isinstance(err, aiohttp.ClientProxyConnectionError):
        reason, retriable = f"cannot connect to the proxy: {_os_reason(err.os_error)}", True
    elif isinstance(err, aiohttp.ClientConnectorError):
        reason, retriable = f"connection failed: {_os_reason(err.os_error)}", True
    elif isinstance(err, aiohttp.ServerDisconnectedError):
        reason, retriable = "server closed the connection", True
    elif isinstance(err, aiohttp.ClientHttpProxyError):
        reason, retriable = f"proxy answered HTTP {err.status}", err.status >= 500
    elif isinstance(err, aiohttp.ClientOSError):
        reason, retriable = f"connection failed: {_os_reason(err)}", True
    elif isinstance(err, aiohttp.ClientPayloadError):
        reason, retriable = "truncated answer", True
    elif isinstance(err, aiohttp.ClientResponseError):
        reason = "invalid HTTP answer"
    return reason, retriable


def _os_reason(error: OSError) -> str:
    if error.errno is not None and error.errno > 0:
        return os.strerror(error.errno).lower()
    if error.strerror:  # resolver errors have negative numbers and their own text
        return error.strerror.lower()
    return type(error).__name__


def _status_failure(status: int, retry_after_header: str | None) -> _HttpFailure:
    if status != 429 and status < 500:
        return _HttpFailure(f"HTTP {status}", status=status)
    retry_after = parse_retry_after(retry_after_header, time.time())
    if retry_after is not None and retry_after > RETRY_AFTER_LIMIT:
        return _HttpFailure(
            f"HTTP {status}, asked to retry after {retry_after:.0f}s", status=status
        )
    return _HttpFailure(f"HTTP {status}", retriable=True, retry_after=retry_after, status=status)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks to wait (delay-seconds or an HTTP date), None if absent
    or unreadable; `now` is the current Unix time, for the date form."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return max(0.0, (moment - datetime.fromtimestamp(now, timezone.utc)).total_seconds())
    except OverflowError:
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what a token is bound to."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def _tls_setting(settings: ClientSettings) -> ssl.SSLContext | bool:
    """aiohttp's `ssl` argument: verify with the system CAs, with --ca-cert, or not at all."""
    if settings.insecure:
        return False
    if settings.ca_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_cert)
    except ssl.SSLError:
        raise UsageError(f"--ca-cert {settings.ca_cert}: not a PEM certificate file") from None
    except OSError as err:
        raise UsageError(f"--ca-cert {settings.ca_cert}: {err.strerror or err}") from None


def _proxy_url(value: str) -> str:
    return value if "://" in value else f"http://{value}"


def _check_proxies(proxies: Mapping[str, str]) -> None:
    for scheme in ("http", "https"):
        value = proxies.get(scheme)
        if value and urlsplit(_proxy_url(value)).scheme != "http":
            # The value is not repeated: a proxy URL may carry a password.
            raise UsageError(f"{scheme}_proxy: only http:// proxies are supported")


def _proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy for `url` from `<scheme>_proxy`, unless `no_proxy` lists its host (or `*`)."""
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme)
    if not proxy:
        return None
    host = (parts.hostname or "").lower()
    for entry in proxies.get("no", "").split(","):
        name = entry.strip().lower().lstrip(".").strip("[]")
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return None
    return _proxy_url(proxy)


def fetch_snapshot(settings: ClientSettings) -> Snapshot:
    """Read the whole fleet once (blocking)."""

    read: list[Snapshot] = []

    async def run() -> None:
        async with CpxClient(settings) as client:
            read.append(await client.snapshot())

    # The snapshot is handed out beside the task, not as its result: when asyncio.run() puts
    # back the SIGINT handler, Python formats the old handler, which names the finished task
    # and so the repr of its whole result (10,000 instances: 2% of a run).
    asyncio.run(run())
    return read[0]
