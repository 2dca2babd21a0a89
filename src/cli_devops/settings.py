"""How to reach one CPX API, and the one home of every default a command starts from: the
options, the contexts file (whose values are checked by those options), the exporter and the
docs (a test compares the README's table with these values) all read them here.

A plain dataclass with no network library behind it, so the command-line layer can show the
defaults in `--help` and build the settings without paying for the HTTP client's import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_URL = "http://localhost:8081"
"""Where the reference CPX server listens when started as `python3 cpx_server.py 8081`."""
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 3
DEFAULT_EXPORTER_PORT = 8095
"""Outside 9100-9999, where Prometheus's default port allocations put exporters, and away from
8080/8081 where CPX and the bundled simulator listen."""
DEFAULT_EXPORTER_LISTEN = f"127.0.0.1:{DEFAULT_EXPORTER_PORT}"
DEFAULT_TELEMETRY_PATH = "/metrics"
DEFAULT_MAX_REQUESTS = 40
"""node_exporter's default: scrapes in flight at once beyond this are answered 503."""
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")
DEFAULT_LOG_LEVEL = "info"
DEFAULT_LOG_FORMAT = "logfmt"
DEFAULT_SHARD = "0/1"
"""The whole fleet: one exporter's share when there is only one."""
DEFAULT_SCRAPE_TIMEOUT = 10.0
"""Prometheus's own default scrape_timeout, used when a scrape does not send its timeout."""

DEFAULT_THRESHOLD = 90.0
"""CPU or memory percentage above which an instance is Unhealthy."""
DEFAULT_MIN_HEALTHY = 2
"""A service with fewer healthy instances than this is flagged."""
DEFAULT_TRACK_INTERVAL = 3.0
"""Seconds between the polls of `track`."""
DEFAULT_TOP_INTERVAL = 2.0
"""Seconds between the polls of `top`."""
DEFAULT_HISTORY = 30
"""Samples kept per instance by `track` and `top` (sparklines, min/avg/max, forecasts)."""


@dataclass(frozen=True)
class ClientSettings:
    """How to talk to one CPX API.

    `timeout` bounds each attempt (connect and read), `retries` the attempts after the first,
    `deadline` (seconds, optional) one whole read of the fleet. `token` is sent as a Bearer
    header to the origin of `base_url` only and is kept out of repr and logs. `proxies` maps
    a URL scheme (and "no" for the hosts to reach directly) to a proxy URL, as the standard
    `*_proxy` environment variables do.
    """

    base_url: str = DEFAULT_URL
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int | None = None
    """Requests in flight at once; None adapts it to the API (see `client/concurrency.py`)."""
    log: Callable[[str], None] | None = None
    retries: int = DEFAULT_RETRIES
    deadline: float | None = None
    token: str | None = field(default=None, repr=False)
    auth_scheme: str = "Bearer"
    """The Authorization scheme `token` is sent with ("Basic" for a base64 user:password)."""
    ca_cert: str | None = None
    insecure: bool = False
    proxies: Mapping[str, str] = field(default_factory=dict)


DEFAULT_QUERY_TIMEOUT = 30.0
"""Seconds per Prometheus query attempt unless told otherwise: an answer of 100,000 series takes
seconds to evaluate and encode on a busy Prometheus, where one CPX answer takes milliseconds."""
DEFAULT_LOOKBACK = 300.0
"""Seconds back in which an instance or exporter target still counts as part of the fleet."""


@dataclass(frozen=True)
class PrometheusSettings:
    """How to read the fleet from one Prometheus (or anything speaking its query API).

    `client` carries its URL, token, timeouts, retries, deadline and TLS options (the same HTTP
    set-up as for CPX); `selector` (label matchers in braces, or empty) picks the fleet's series
    when several share one Prometheus; `at` (Unix seconds) reads the fleet as it was then.
    """

    client: ClientSettings
    selector: str = ""
    lookback: float = DEFAULT_LOOKBACK
    at: float | None = None
