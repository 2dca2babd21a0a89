"""`HttpSession`: the one HTTP layer, for the CPX API, Prometheus and anything that posts.

One aiohttp session (connection pool) per run, with the settings' TLS, proxies and token (to
the base URL's origin only), redirects followed within `MAX_REDIRECTS`, a timeout per attempt
cut to the read's deadline, a size cap on every body, and `request`: the one retry loop, with
exponential backoff and jitter, `Retry-After`, and the read's retry budget (`budget.py`).
aiohttp is imported by this package only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import NamedTuple

import aiohttp
from yarl import URL

from cli_devops.client.budget import ReadBudget
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


class Send(NamedTuple):
    """What a request sends: a POST (or PUT) with a body, and headers of its own (a webhook's
    signature); none for a GET."""

    body: bytes
    content_type: str = "application/json"
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()


class RetryHooks(NamedTuple):
    """`failed(err)` is told of every failed attempt; `resume()`, awaited after each backoff
    wait, may refuse the next attempt (the read's deadline is then the failure)."""

    failed: Callable[[HttpFailure], None] | None = None
    resume: Callable[[], Awaitable[bool]] | None = None


NO_HOOKS = RetryHooks()

FirstAnswer = Callable[[bool], None]
"""Told once, at the first answer, whether the server closes every connection (HTTP/1.0
without keep-alive, or `Connection: close`)."""


class HttpSession:
    """An open connection pool to one base URL; `async with HttpSession(settings) as http`.

    Raises SettingError at construction when the CA file or a proxy variable is unusable.
    """

    def __init__(
        self,
        settings: ClientSettings,
        log: Callable[[str], None] | None = None,
        first_answer: FirstAnswer | None = None,
    ) -> None:
        self.settings = settings
        self._log_line = log
        self.network = Network(settings, self.log)
        self._session: aiohttp.ClientSession | None = None
        self._first_answer = first_answer
        self._watch: aiohttp.TraceConfig | None = None

    def log(self, line: str) -> None:
        if self._log_line is not None:
            self._log_line(line)

    async def __aenter__(self) -> HttpSession:
        # limit=0: the caller bounds the requests, and so the connections, in flight; idle
        # keep-alive connections are reused by the next request.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        traces = []
        if self._first_answer is not None:
            watch = aiohttp.TraceConfig()
            watch.on_request_end.append(self._on_first_response)
            self._watch = watch
            traces.append(watch)
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
            trace_configs=traces,
        )
        # aiohttp silently repeats an idempotent request once when the server drops the
        # connection; with that off, every attempt is one of ours and counts in the budget.
        # aiohttp 3.14 (checked) has no public setting for it; its own test client sets this.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _on_first_response(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        """Learn from the first answer whether the server keeps connections open, then stop
        tracing (tracing costs a few percent per request)."""
        if self._watch is None or self._first_answer is None:
            return
        with contextlib.suppress(ValueError):
            getattr(session, "trace_configs", []).remove(self._watch)
        self._watch = None
        response = params.response
        header = response.headers.get("Connection", "")
        tokens = {token.strip().lower() for token in header.split(",")}
        version = response.version
        old = version is not None and version < aiohttp.HttpVersion11
        self._first_answer("close" in tokens or (old and "keep-alive" not in tokens))

    async def request(
        self,
        path: str,
        cap: int,
        budget: ReadBudget,
        *,
        send: Send | None = None,
        hooks: RetryHooks = NO_HOOKS,
    ) -> bytes:
        """The body of the base URL + `path` (an encoded query string may follow), at most
        `cap` bytes, undecoded: the one retry loop. A failure another attempt may cure is
        retried while `budget` allows (see `ReadBudget.retry_wait`), with `hooks` told of each
        failure and asked before each retry. Raises HttpFailure, the last attempt's reason."""
        budget.request_made()
        method = "GET" if send is None else send.method
        retries = 0
        while True:
            try:
                return await self.attempt(path, cap, budget, send)
            except HttpFailure as err:
                if hooks.failed is not None:
                    hooks.failed(err)
                wait = budget.retry_wait(err.retriable, err.retry_after, retries)
                if wait is None:
                    if err.retriable and retries < budget.retries and budget.spent:
                        self.log("retry budget of this read is spent: not retrying")
                    raise
                retries += 1
                self.log(
                    f"{method} {self.settings.base_url}{path}: retry {retries} of "
                    f"{self.settings.retries} in {wait:.2f}s"
                )
                await asyncio.sleep(wait)
                if hooks.resume is not None and not await hooks.resume():
                    raise HttpFailure(budget.reason(), unanswered="deadline") from None

    async def attempt(
        self,
        path: str,
        cap: int,
        budget: ReadBudget,
        send: Send | None = None,
    ) -> bytes:
        """One attempt, redirects followed, the body read up to `cap` bytes."""
        method, body = ("GET", None) if send is None else (send.method, send.body)
        headers = {} if send is None else {"Content-Type": send.content_type, **dict(send.headers)}
        if self._session is None:
            raise RuntimeError("HttpSession used outside 'async with'")
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
                async with self._session.request(
                    method,
                    target,
                    data=body,
                    allow_redirects=False,
                    headers={**headers, **network.auth_headers(url)},
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
                    answer = b"" if location else await read_capped(response, cap)
            except TimeoutError:
                if cut_by_deadline:
                    self.log(f"{method} {url} -> {budget.reason()}")
                    raise HttpFailure(budget.reason(), unanswered="deadline") from None
                reason = f"timed out after {self.settings.timeout:g}s"
                self.log(f"{method} {url} -> {reason}")
                raise HttpFailure(reason, retriable=True, unanswered="timeout") from None
            except aiohttp.ClientError as err:
                self.log(f"{method} {url} -> {type(err).__name__}: {err}")
                reason, retriable = describe(err)
                raise HttpFailure(reason, retriable=retriable) from None
            if self._log_line is not None:
                self.log(
                    f"{method} {url} -> {status} in {(time.monotonic() - started) * 1000:.1f} ms"
                )
            if location:
                url = target = network.redirect_target(url, location)
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, body, headers = "GET", None, {}
                continue
            if status != 200 and (method == "GET" or not 200 <= status < 300):
                raise status_failure(status, retry_after)
            if encoding.strip().lower() != "identity":
                raise HttpFailure("answer is compressed, which was not asked for")
            return answer
        raise HttpFailure(f"more than {MAX_REDIRECTS} redirects")
