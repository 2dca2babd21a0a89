"""The one check of a host name before anything is built or sent with it.

The resolver encodes a name with the IDNA codec; a name it cannot encode (an empty label as in
`a..b`, a label over 63 characters, a name over 253) raised from deep inside the connection,
past every handler, as an unexpected error. Every URL from outside (`--cp-url`, `CPX_URL`, a
context's URL, `--prometheus-url`, a redirect's `Location`) passes this check where it is parsed.
"""

from __future__ import annotations

MAX_NAME = 253


def host_problem(host: str) -> str | None:
    """Why `host` (as `urlsplit` returns it: no brackets, no port) cannot be connected to, or
    None when it can. IP literals pass; names must be encodable as the resolver encodes them."""
    try:
        host.encode("utf-8")
    except UnicodeEncodeError:  # an argument's invalid UTF-8 byte, as a lone surrogate
        return "invalid host name (not valid UTF-8)"
    if ":" in host:  # an IPv6 literal (checked by urlsplit), with a zone id of plain ASCII
        return None if host.isascii() else "invalid IPv6 address (a zone id of plain ASCII)"
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        return "invalid host name (an empty label, or a label over 63 characters)"
    if len(encoded.rstrip(b".")) > MAX_NAME:
        return f"invalid host name (over {MAX_NAME} characters)"
    return None
