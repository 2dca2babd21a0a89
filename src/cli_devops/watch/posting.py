"""The POSTs of `watch` (the webhook and Alertmanager) over the one HTTP layer
(`client.HttpSession`): the URL checked once, a connection pool per receiver, and the layer's
retry loop, so a delivery is retried as every request of the tool is.

A POST that fails in a way another attempt may cure (no connection, a reset, a timeout, HTTP 5xx
or 429) is retried with backoff, within `DELIVERY_DEADLINE` seconds; other answers (a 4xx) are
final. Once an answer is 2xx the event is never sent again. The URL's user and password, if
any, are sent as basic auth to the URL's origin only, and never shown; proxies are those of the
environment, as for the fleet's reads.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cli_devops.client import ClientSettings, HttpFailure, HttpSession, ReadBudget, Send
from cli_devops.errors import SettingError, UsageError
from cli_devops.text import terminal_safe

if TYPE_CHECKING:
    from yarl import URL

REQUEST_TIMEOUT = 5.0
RETRIES = 3
DELIVERY_DEADLINE = 10.0
"""A delivery is given up after this long, its retries included."""
ANSWER_CAP = 64 * 1024
MAX_URL = 2048
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
"""Labels of 1-63 characters, none empty: what DNS (and aiohttp's IDNA encoding) accepts."""


class Target:
    """A checked http(s) URL to POST to; `shown` is safe to print (no user or password)."""

    def __init__(self, text: str, what: str) -> None:
        from yarl import URL

        if len(text) > MAX_URL or not text.isprintable() or any(c.isspace() for c in text):
            raise UsageError(f"invalid {what} URL: not a URL")
        try:
            url = URL(text)
            url.port  # noqa: B018 -- a port out of range raises here
        except (ValueError, TypeError):
            raise UsageError(f"invalid {what} URL: not a URL") from None
        if url.scheme not in ("http", "https") or not _good_host(url.host):
            raise UsageError(f"invalid {what} URL {terminal_safe(_hidden(url))}: "
                             "give http://host[:port]/path or https://...")  # fmt: skip
        self.url: URL = url
        self.shown = _hidden(url)

    def join(self, path: str) -> Target:
        """This base URL with `path` appended to its path."""
        joined = Target.__new__(Target)
        joined.url = self.url.with_path(self.url.path.rstrip("/") + path)
        joined.shown = _hidden(joined.url)
        return joined

    def settings(self, proxies: Mapping[str, str]) -> ClientSettings:
        """The HTTP layer's settings for this URL: its user and password as basic auth."""
        url = self.url
        token = None
        if url.user is not None:
            pair = f"{url.user}:{url.password or ''}".encode()
            token = base64.b64encode(pair).decode("ascii")
        return ClientSettings(
            base_url=str(url.with_user(None).with_query(None).with_fragment(None)),
            timeout=REQUEST_TIMEOUT, retries=RETRIES, token=token, auth_scheme="Basic",
            proxies=proxies,
        )  # fmt: skip

    def query(self) -> str:
        """The URL's encoded query string, `?` first, to follow the path of each request."""
        query = self.url.raw_query_string
        return f"?{query}" if query else ""


def _good_host(host: str | None) -> bool:
    """A host name (letters, digits, '-', '_', '.') or an IP address."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return len(host) <= 253 and bool(_HOST_NAME.fullmatch(host))
    return True


def _hidden(url: URL) -> str:
    return str(url.with_user(None)) if url.user or url.password else str(url)


class Poster:
    """The HTTP sessions of a run's receivers (one pool each, opened at the first POST);
    `async with`."""

    def __init__(
        self, proxies: Mapping[str, str] | None = None, deadline: float = DELIVERY_DEADLINE
    ) -> None:
        self.proxies = dict(proxies or {})
        self.deadline = deadline
        self._sessions: dict[str, HttpSession] = {}

    async def __aenter__(self) -> Poster:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.__aexit__(None, None, None)

    async def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> str | None:
        """POST until a 2xx answer or the retries run out; None when delivered, else why the
        last attempt failed."""
        try:
            session = await self._session(target)
        except SettingError as err:
            return str(err)
        send = Send(body, headers=tuple(headers.items()))
        try:
            await session.request(target.query(), ANSWER_CAP, ReadBudget(RETRIES, self.deadline),
                                  send=send)  # fmt: skip
        except HttpFailure as err:
            return terminal_safe(str(err))
        return None

    async def _session(self, target: Target) -> HttpSession:
        key = str(target.url)
        session = self._sessions.get(key)
        if session is None:
            session = HttpSession(target.settings(self.proxies))
            await session.__aenter__()
            self._sessions[key] = session
        return session
