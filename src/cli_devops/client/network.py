"""Network set-up of the client: the origin, TLS, proxies, redirects and who gets the token,
and the short reasons for failed requests.

The token goes to the origin of the base URL only (scheme, host and port), never to a redirect
elsewhere. A redirect's `Location` that carries credentials (`user:password@`) is followed
without them: credentials are never taken from an answer.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable, Mapping
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from cli_devops.client.budget import RETRY_AFTER_LIMIT, parse_retry_after
from cli_devops.client.settings import ClientSettings
from cli_devops.errors import SettingError, UsageError
from cli_devops.hosts import host_problem

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))


class HttpFailure(Exception):
    """A request that produced no usable JSON; the message is the short reason.

    `retriable` says whether another attempt may succeed; `retry_after` is how long the server
    asked to wait (seconds), `status` the HTTP status when there was one. `unanswered` is
    "timeout" for an attempt that got no answer in time, "deadline" for one the read's deadline
    ended (or never started).
    """

    def __init__(
        self,
        reason: str,
        *,
        retriable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        unanswered: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.retriable = retriable
        self.retry_after = retry_after
        self.status = status
        self.unanswered = unanswered

    @property
    def congested(self) -> bool:
        """Whether the failure means "too much load" to the concurrency limiter: a refused,
        reset or dropped connection, a truncated answer, or HTTP 429/503. A timeout does not:
        it is the mark of a stuck instance (see `client/concurrency.py`)."""
        if self.unanswered is not None:
            return False
        return self.retriable and (self.status is None or self.status in (429, 503))


class Network:
    """Where requests go and with what: TLS, proxy, the token's origin, redirect targets."""

    def __init__(self, settings: ClientSettings, log: Callable[[str], None]) -> None:
        self.settings = settings
        self.tls = tls_setting(settings)
        check_proxies(settings.proxies)
        self.origin = origin(settings.base_url)
        self.base = connect_url(settings.base_url)
        self.base_path = self.base.raw_path.rstrip("/")
        self.proxied = any(settings.proxies.get(scheme) for scheme in ("http", "https"))
        self._log = log
        self._said_credentials = False

    def target(self, path: str) -> URL:
        """A ready URL object: aiohttp would otherwise parse and re-encode a string every
        request (paths here are "/servers" or an IP that parse_servers validated)."""
        return self.base.with_path(self.base_path + path, encoded=True)

    def proxy_for(self, url: str) -> str | None:
        return proxy_for(url, self.settings.proxies) if self.proxied else None

    def auth_headers(self, url: str) -> dict[str, str]:
        """The Authorization header (Bearer; Basic for a second source), for the origin of the
        base URL only (never for a redirect elsewhere)."""
        if self.settings.token and origin(url) == self.origin:
            return {"Authorization": f"{self.settings.auth_scheme} {self.settings.token}"}
        return {}

    def redirect_target(self, url: str, location: str) -> str:
        """The absolute URL to follow, without any credentials the Location carried; raises
        HttpFailure for a target that is not an http(s) URL."""
        target = ""
        try:
            target = urljoin(url, location.strip())
            parts = urlsplit(target)
            scheme, host, _port = origin(target)
        except ValueError:
            scheme = host = ""
        if (
            scheme not in ("http", "https")
            or not host
            or not location.isprintable()
            or host_problem(host)
        ):
            raise HttpFailure("redirected to an invalid URL")
        if "@" in parts.netloc:
            netloc = parts.netloc.rpartition("@")[2]
            target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
            if not self._said_credentials:
                self._said_credentials = True
                self._log("a redirect carried credentials in its URL: they are not used")
        if self.settings.token and origin(target) != self.origin:
            self._log(f"redirect leaves {self.settings.base_url}: the token is not sent")
        return target


def connect_url(base_url: str) -> URL:
    """The base URL as aiohttp connects to it: an IPv6 zone id written `%25zone` in the URL
    is handed to the resolver as `%zone` (aiohttp resolves the raw host)."""
    scheme, _, rest = base_url.partition("://")
    if rest.startswith("[") and "%25" in rest.split("]", 1)[0]:
        return URL(f"{scheme}://{rest.replace('%25', '%', 1)}")
    return URL(base_url)


class TooLarge(aiohttp.ClientError):
    pass


async def read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Read the body, failing as soon as it exceeds `cap` bytes (never buffering more)."""
    length = response.content_length
    if length is not None:
        if length > cap:
            raise TooLarge("response too large")
        # The parser stops at the declared length: one read, no chunk loop.
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise TooLarge("response too large")
        chunks.append(chunk)
    return b"".join(chunks)


def describe(err: aiohttp.ClientError) -> tuple[str, bool]:
    """The short reason for a failed request, and whether another attempt may succeed."""
    reason, retriable = type(err).__name__, False
    if isinstance(err, TooLarge):
        reason = "response too large"
    elif isinstance(err, aiohttp.ClientConnectorCertificateError):
        reason = "TLS certificate not trusted"
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


def status_failure(status: int, retry_after_header: str | None) -> HttpFailure:
    if status != 429 and status < 500:
        return HttpFailure(f"HTTP {status}", status=status)
    retry_after = parse_retry_after(retry_after_header, time.time())
    if retry_after is not None and retry_after > RETRY_AFTER_LIMIT:
        return HttpFailure(f"HTTP {status}, asked to retry after {retry_after:.0f}s", status=status)
    return HttpFailure(f"HTTP {status}", retriable=True, retry_after=retry_after, status=status)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what a token is bound to."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def tls_setting(settings: ClientSettings) -> ssl.SSLContext | bool:
    """aiohttp's `ssl` argument: verify with the system CAs, with the CA file, or not at all."""
    if settings.insecure:
        return False
    if settings.ca_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_cert)
    except ssl.SSLError:
        raise SettingError("ca_cert", f"{settings.ca_cert}: not a PEM certificate file") from None
    except OSError as err:
        raise SettingError("ca_cert", f"{settings.ca_cert}: {err.strerror or err}") from None


def _proxy_url(value: str) -> str:
    return value if "://" in value else f"http://{value}"


def check_proxies(proxies: Mapping[str, str]) -> None:
    for scheme in ("http", "https"):
        value = proxies.get(scheme)
        if not value:
            continue
        # The value is never repeated: a proxy URL may carry a password.
        try:
            parts = urlsplit(_proxy_url(value))
            _port = parts.port
        except ValueError:
            raise UsageError(f"{scheme}_proxy: not a valid http://HOST:PORT URL") from None
        if parts.scheme != "http":
            raise UsageError(f"{scheme}_proxy: only http:// proxies are supported")
        if not parts.hostname or host_problem(parts.hostname):
            raise UsageError(f"{scheme}_proxy: not a valid http://HOST:PORT URL")


def proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
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
