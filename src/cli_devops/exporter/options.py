"""How the exporter serves, as the exporter toolkit's flags set it: the addresses it listens
on, the telemetry path, the cap on scrapes in flight and whether its own process metrics are
exported. Parsed once here; the server sees only these typed values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cli_devops.errors import SettingError
from cli_devops.hosts import host_problem
from cli_devops.settings import (
    DEFAULT_EXPORTER_LISTEN,
    DEFAULT_LOG_FORMAT,
    DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_TELEMETRY_PATH,
    LOG_FORMATS,
    LOG_LEVELS,
)

RESERVED_PATHS = ("/", "/-/healthy", "/healthz")


def parse_listen(text: str) -> tuple[str, int]:
    """Read `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every IPv4 interface); raises UsageError."""
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        colon = ""
    if not colon or not port_text.isdigit() or int(port_text) > 65535:
        raise SettingError(
            "listen", f"{text!r}: expected HOST:PORT, like {DEFAULT_EXPORTER_LISTEN}"
        )
    problem = host_problem(host) if host else None
    if problem:
        raise SettingError("listen", f"{text!r}: {problem}")
    return host or "0.0.0.0", int(port_text)


def parse_telemetry_path(text: str) -> str:
    """An absolute URL path of printable ASCII with no query or fragment, other than the
    landing page's and the health check's; raises SettingError."""
    wrong = ""
    if not text.startswith("/"):
        wrong = "it must start with /"
    elif any(not (0x21 <= ord(c) <= 0x7E) or c in "?#" for c in text):
        wrong = "only printable ASCII without spaces, ? or #"
    elif text in RESERVED_PATHS:
        wrong = f"{text} is the exporter's own page"
    if wrong:
        raise SettingError("telemetry_path", f"{text!r}: {wrong}")
    return text


@dataclass(frozen=True)
class ServeOptions:
    """Where and how `/metrics` is served and events logged (defaults: the exporter
    toolkit's). Raises SettingError on a value that cannot be used, so one that exists is
    sound."""

    addresses: tuple[tuple[str, int], ...] = (("127.0.0.1", 0),)
    telemetry_path: str = DEFAULT_TELEMETRY_PATH
    max_requests: int = DEFAULT_MAX_REQUESTS
    """Scrapes answered at once; 0 for no limit."""
    exporter_metrics: bool = True
    """Whether the exporter's own `process_*` metrics are exported."""
    log_level: str = DEFAULT_LOG_LEVEL
    log_format: str = DEFAULT_LOG_FORMAT

    def __post_init__(self) -> None:
        if not self.addresses:
            raise SettingError("listen", "none given")
        parse_telemetry_path(self.telemetry_path)
        if self.max_requests < 0:
            raise SettingError("max_requests", f"{self.max_requests}: 0 (no limit) or more")
        if self.log_level not in LOG_LEVELS:
            raise SettingError("log_level", f"{self.log_level!r}: one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise SettingError(
                "log_format", f"{self.log_format!r}: one of {', '.join(LOG_FORMATS)}"
            )


def parse_addresses(listen: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Every address to listen on, in order, once each (port 0, any free port, as often as it
    is given); the default when none is given."""
    addresses: list[tuple[str, int]] = []
    for text in listen:
        address = parse_listen(text)
        if address not in addresses or address[1] == 0:
            addresses.append(address)
    return tuple(addresses) or (parse_listen(DEFAULT_EXPORTER_LISTEN),)
