"""The one redaction of secrets in text that is printed: tables, errors, warnings, `--debug`
lines, `top`'s header, `config get-contexts` and `config view`.

A URL's user information (`https://ops:s3cret@host` becomes `https://<redacted>@host`), the
value of a query parameter named like a credential (`?access_token=...`), and the credentials of
an `Authorization` header or a `Bearer`/`Basic` word are replaced by `<redacted>`. It errs on
the side of hiding: a URL with an `@` anywhere in it loses everything from `://` to the last `@`.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)\S*@")
_SECRET_PARAM = re.compile(
    r"([?&;][^=&#\s]*(?:token|key|secret|passw|pwd|auth|sig|credential|session)[^=&#\s]*=)"
    r"[^&#;\s]*",
    re.IGNORECASE,
)
_SCHEME_CREDENTIALS = re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str) -> str:
    """`text` with every URL's user information and credential-like query values hidden."""
    if "@" in text:
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(rf"\1{REDACTED}", text)
    return _SCHEME_CREDENTIALS.sub(rf"\1\2{REDACTED}", text)


def redact_header(name: str, value: str) -> str:
    """A header's value as it may be printed: a credential header's value hidden whole."""
    if name.strip().lower() in SECRET_HEADERS:
        return REDACTED
    return redact(value)
