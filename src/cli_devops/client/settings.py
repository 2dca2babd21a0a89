"""The client's settings (`ClientSettings`, declared with every default in `cli_devops.settings`)
and the checked base URL.

Errors here are `SettingError`s in the library's own words, with `setting` naming what was
wrong, so the command-line layer can name its own option or variable.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cli_devops.errors import SettingError
from cli_devops.hosts import host_problem
from cli_devops.settings import DEFAULT_RETRIES, ClientSettings

__all__ = ["DEFAULT_RETRIES", "ClientSettings", "normalize_base_url"]


def normalize_base_url(raw: str) -> str:
    """Accept `host:port`, `http://host:port/`, IPv6 literals in brackets (with a zone id as
    `%25zone`); return `scheme://host:port[/path]`.

    Refused: credentials (`user:password@`; the token is the way to authenticate, and the
    message never repeats the URL, which would show the password), port 0, a query or fragment,
    and characters that are not printable (they would reach the terminal in messages).
    """
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    if not text.isprintable():
        raise SettingError("url", ": it has control characters")
    if "@" in text.partition("://")[2].partition("?")[0].partition("#")[0]:
        # Before parsing: `user:pa/ss@host` splits at the `/`, and the message would show `pa`.
        raise SettingError(
            "url", ": credentials (user:password@) are not accepted in the URL; use a token"
        )
    try:
        parts = urlsplit(text)
    except ValueError:
        raise SettingError("url", _invalid(raw, _port_problem(text))) from None
    try:
        port = parts.port
    except ValueError:
        raise SettingError("url", _invalid(raw, _port_problem(text))) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("url", _invalid(raw, "expected http://HOST:PORT"))
    if port == 0:
        raise SettingError("url", _invalid(raw, "port 0 is outside 1-65535"))
    if parts.query or parts.fragment:
        raise SettingError("url", _invalid(raw, "no query or fragment allowed"))
    hostname = parts.hostname
    problem = host_problem(hostname)
    if problem:
        raise SettingError("url", _invalid(raw, problem))
    if "%" in hostname:  # an IPv6 zone id, which a URL writes as %25 (RFC 6874)
        address, _, zone = hostname.partition("%")
        zone = zone[2:] if zone.startswith("25") else zone
        if ":" not in address or not zone or not zone.replace("-", "").replace(".", "").isalnum():
            raise SettingError("url", _invalid(raw, "invalid IPv6 zone id"))
        hostname = f"{address}%25{zone}"
    host = f"[{hostname}]" if ":" in hostname else hostname
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _invalid(raw: str, reason: str) -> str:
    return f" {raw!r}: {reason}"


def _port_problem(url: str) -> str:
    """Why urlsplit refused `url`, said plainly (its own messages name its internals)."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # an unclosed IPv6 bracket, which fails the split itself
        return "expected http://HOST:PORT, an IPv6 address in brackets"
    port = netloc.rpartition("]")[2].rpartition(":")[2] if ":" in netloc else ""
    if port and not port.isdigit():
        return f"port {port!r} is not a number"
    if port:
        return f"port {port} is outside 1-65535"
    return "expected http://HOST:PORT"
