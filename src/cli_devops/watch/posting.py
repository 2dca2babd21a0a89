"""HTTP POSTs of `watch` (the webhook and Alertmanager): the URL checked once, each POST with
its retries and backoff, and one connection pool. Kept in one module so that it can move onto
a shared HTTP layer unchanged.

A POST is retried when it fails in any way (no connection, a timeout, an answer other than
2xx), after 0.5 s, 1 s and 2 s, so an event is given up within a few seconds; once an answer
is 2xx it is never sent again. No redirect is followed (the body would be re-sent to whoever
the receiver points at), no proxy or ~/.netrc from the environment is used, and the URL's
user and password, if any, are sent as basic auth and never shown.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cli_devops.errors import UsageError
from cli_devops.text import terminal_safe

if TYPE_CHECKING:
    import aiohttp
    from yarl import URL

BACKOFF = (0.5, 1.0, 2.0)
"""Waits before the second, third and fourth attempt."""
REQUEST_TIMEOUT = 5.0
MAX_URL = 2048
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252}[A-Za-z0-9_.])?")


class Target:
    """A checked http(s) URL to POST to; `shown` is safe to print (no user or password)."""

    def __init__(self, text: str, what: str) -> None:
        from yarl import URL

        if len(text) > MAX_URL or not text.isprintable() or any(c.isspace() for c in text):
            raise UsageError(f"invalid {what} URL: not a URL")
        try:
            url = URL(text)
        except (ValueError, TypeError):
            raise UsageError(f"invalid {what} URL: not a URL") from None
        if url.scheme not in ("http", "https") or not _good_host(url.host):
            raise UsageError(f"invalid {what} URL {terminal_safe(_hidden(url))}: "
                             "give http://host[:port]/path or https://...")  # fmt: skip
        try:
            url.port  # noqa: B018 -- a port out of range raises here
        except ValueError:
            raise UsageError(f"invalid {what} URL: bad port") from None
        self.url: URL = url
        self.shown = _hidden(url)

    def join(self, path: str) -> Target:
        """This base URL with `path` appended to its path."""
        joined = Target.__new__(Target)
        joined.url = self.url.with_path(self.url.path.rstrip("/") + path)
        joined.shown = _hidden(joined.url)
        return joined


def _good_host(host: str | None) -> bool:
    """A host name (letters, digits, '-', '_', '.') or an IP address."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST_NAME.fullmatch(host))
    return True


def _hidden(url: URL) -> str:
    return str(url.with_user(None)) if url.user or url.password else str(url)


class Poster:
    """One aiohttp session for every POST of a run; `async with`."""

    def __init__(self, backoff: Sequence[float] = BACKOFF) -> None:
        self.backoff = tuple(backoff)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Poster:
        import aiohttp

        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT), trust_env=False
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> str | None:
        """POST until a 2xx answer or the attempts run out; None when delivered, else why the
        last attempt failed."""
        assert self._session is not None
        reason = "not sent"
        for delay in (0.0, *self.backoff):
            if delay:
                await asyncio.sleep(delay)
            reason = await self._attempt(target, body, headers)
            if not reason:
                return None
        return reason

    async def _attempt(self, target: Target, body: bytes, headers: Mapping[str, str]) -> str:
        import aiohttp

        assert self._session is not None
        auth = None
        if target.url.user is not None:
            auth = aiohttp.BasicAuth(target.url.user, target.url.password or "")
        try:
            async with self._session.post(
                target.url.with_user(None), data=body, headers=dict(headers), auth=auth,
                allow_redirects=False,
            ) as answer:  # fmt: skip
                await answer.content.read(64 * 1024)
                if 200 <= answer.status < 300:
                    return ""
                return f"HTTP {answer.status}"
        except asyncio.TimeoutError:
            return f"no answer within {REQUEST_TIMEOUT:g}s"
        except aiohttp.ClientError as err:
            return terminal_safe(str(err) or type(err).__name__)
        except OSError as err:
            return terminal_safe(err.strerror or str(err))
