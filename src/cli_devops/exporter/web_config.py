"""The exporter's web configuration file: TLS and basic auth, as the Prometheus exporter toolkit
reads them (`--web.config.file` of node_exporter and friends), so the same file serves both.

    tls_server_config:
      cert_file: server.crt          # paths relative to this file
      key_file: server.key
      client_ca_file: ca.crt         # optional, with client_auth_type
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12             # optional (TLS10-TLS13; default TLS12)
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

Everything is checked when the file is loaded (certificates and keys are loaded into the TLS
context, every hash is checked for shape), so a bad file stops the exporter at start rather than
at the first scrape. PyYAML is imported only to read this file and bcrypt only when it lists
users. `WebServerMixin` and `authorized` are the two hooks the HTTP server uses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import ssl
import stat
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cli_devops.errors import UsageError
from cli_devops.reading import NotRegularFile, read_regular

MAX_FILE_SIZE = 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0
"""A client that has not finished the TLS handshake by then is dropped (a slow or idle client
holds only its own thread, never the accept loop)."""
AUTH_CACHE_SIZE = 1024
"""Credentials that passed bcrypt are remembered (as a digest) so a scrape every few seconds does
not spend 60 ms of CPU on bcrypt each time; the exporter toolkit caches the same way."""

_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_DUMMY_HASH = b"$2b$10$OxKae.V8ryaHU9dzbzxMtue6.Ww1r.kbn2ja3ghd3gt5jAgL5rXuy"
"""Checked against for an unknown user, so the answer takes as long as for a known one."""
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
_TOP_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")
_TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
             "max_version", "prefer_server_cipher_suites")  # fmt: skip
_TLS_UNSUPPORTED = ("cert", "key", "client_ca", "cipher_suites", "curve_preferences",
                    "client_allowed_sans")  # fmt: skip


class WebConfigError(UsageError):
    """The web configuration file cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class WebConfig:
    """What the exporter serves with: a TLS context (None: plain HTTP) and basic-auth users."""

    tls: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


def load_web_config(path: Path) -> WebConfig:
    """Read and check the file; raises WebConfigError naming the file and what is wrong."""
    import yaml

    try:
        data, _ = read_regular(path, MAX_FILE_SIZE)
    except NotRegularFile:
        raise WebConfigError(f"web config file {path} is not a regular file") from None
    except OSError as err:
        raise WebConfigError(f"cannot read web config file {path}: {err.strerror or err}") from None
    if len(data) > MAX_FILE_SIZE:
        raise WebConfigError(f"web config file {path} is larger than {MAX_FILE_SIZE // 1024} KiB")
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise WebConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise WebConfigError(f"{path}: not valid YAML: nested too deeply") from None
    except ValueError as err:  # a constructor's own check, like a timestamp's month
        raise WebConfigError(f"{path}: not valid YAML: {err}") from None
    if document is None:
        return WebConfig()
    top = _mapping(document, path, "the file")
    for key in top:
        if key not in _TOP_KEYS:
            raise WebConfigError(
                f"{path}: unknown key {key!r}; expected one of {', '.join(_TOP_KEYS)}"
            )
    _check_http_server_config(top.get("http_server_config"), path)
    tls_section = top.get("tls_server_config")
    tls = None if tls_section is None else _tls_context(tls_section, path)
    users = _users(top.get("basic_auth_users"), path)
    return WebConfig(tls, users)


def _mapping(value: object, path: Path, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise WebConfigError(f"{path}: {what} must be a mapping of names to values")
    return value


def _string(section: Mapping[str, Any], key: str, path: Path, where: str) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WebConfigError(f"{path}: {where}.{key} must be a string")
    return value


def _check_http_server_config(section: object, path: Path) -> None:
    if section is None:
        return
    for key, value in _mapping(section, path, "http_server_config").items():
        if key != "http2" or not isinstance(value, bool):
            raise WebConfigError(
                f"{path}: http_server_config.{key} is not supported by this exporter "
                "(it serves HTTP/1.1; only http2: true/false is accepted and ignored)"
            )


def _tls_context(section: object, path: Path) -> ssl.SSLContext:
    config = _mapping(section, path, "tls_server_config")
    for name in config:
        if name in _TLS_UNSUPPORTED:
            raise WebConfigError(
                f"{path}: tls_server_config.{name} is not supported by this exporter"
            )
        if name not in _TLS_KEYS:
            raise WebConfigError(f"{path}: unknown key tls_server_config.{name}")
    where = "tls_server_config"
    cert = _string(config, "cert_file", path, where)
    key = _string(config, "key_file", path, where)
    if cert is None or key is None:
        raise WebConfigError(f"{path}: tls_server_config needs both cert_file and key_file")
    base = path.parent
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(config, "min_version", path) or ssl.TLSVersion.TLSv1_2
    context.maximum_version = (
        _version(config, "max_version", path) or ssl.TLSVersion.MAXIMUM_SUPPORTED
    )
    try:
        _check_regular(base / cert)
        _check_regular(base / key)
        context.load_cert_chain(base / cert, base / key, password=_no_password)
    except (OSError, ssl.SSLError, ValueError, WebConfigError) as err:
        raise WebConfigError(
            f"{path}: cannot load cert_file {cert!r} with key_file {key!r}: {_reason(err)}"
        ) from None
    ca = _string(config, "client_ca_file", path, where)
    auth: str = _string(config, "client_auth_type", path, where) or "NoClientCert"
    if auth in _UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(
            f"{path}: client_auth_type {auth} is not supported (client certificates are always "
            "verified here); use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
    if auth not in _CLIENT_AUTH:
        raise WebConfigError(
            f"{path}: invalid client_auth_type {auth!r}; expected one of {', '.join(_CLIENT_AUTH)}"
        )
    if ca is not None and auth == "NoClientCert":
        raise WebConfigError(f"{path}: client_ca_file is set without a client_auth_type")
    if ca is None and auth != "NoClientCert":
        raise WebConfigError(f"{path}: client_auth_type {auth} needs a client_ca_file")
    if ca is not None:
        try:
            _check_regular(base / ca)
            context.load_verify_locations(base / ca)
        except (OSError, ssl.SSLError, WebConfigError) as err:
            raise WebConfigError(
                f"{path}: cannot load client_ca_file {ca!r}: {_reason(err)}"
            ) from None
    context.verify_mode = _CLIENT_AUTH[auth]
    return context


def _check_regular(file: Path) -> None:
    """Loading a FIFO blocks until a writer comes: only regular files are loaded."""
    try:
        mode = file.stat().st_mode
    except OSError:
        return  # the load says why
    if not stat.S_ISREG(mode):
        raise WebConfigError(f"{file.name} is not a regular file")


def _no_password() -> bytes:
    """An encrypted key is refused at once, never by a passphrase prompt on the terminal."""
    raise WebConfigError("the key is encrypted; give an unencrypted key_file")


def _reason(err: BaseException) -> str:
    if isinstance(err, WebConfigError):
        return str(err)
    if isinstance(err, ssl.SSLError):
        return err.reason or str(err)
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)


def _version(config: Mapping[str, Any], key: str, path: Path) -> ssl.TLSVersion | None:
    value = config.get(key)
    if value is None or value == "":
        return None
    if value not in _TLS_VERSIONS:
        raise WebConfigError(
            f"{path}: invalid tls_server_config.{key} {value!r}; expected one of "
            f"{', '.join(_TLS_VERSIONS)}"
        )
    return _TLS_VERSIONS[value]


def _users(section: object, path: Path) -> dict[str, bytes]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise WebConfigError(f"{path}: basic_auth_users must be a mapping of user names to hashes")
    users = {}
    for user, hashed in section.items():
        name = str(user) if isinstance(user, (str, int)) and not isinstance(user, bool) else None
        if not name or ":" in name:
            raise WebConfigError(f"{path}: basic_auth_users has an invalid user name {user!r}")
        if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            raise WebConfigError(
                f"{path}: basic_auth_users.{name} is not a bcrypt hash ($2y$10$ and 53 characters; "
                "make one with htpasswd -nBC 10 USER)"
            )
        users[name] = hashed.encode("ascii")
    return users


class BasicAuth:
    """Checks an `Authorization` header against the users' bcrypt hashes (thread-safe)."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        self._passed: dict[bytes, None] = {}
        self._lock = threading.Lock()
        self._salt = hashlib.sha256(repr(sorted(self.users.items())).encode()).digest()
        self._dummy = _dummy_hash(self.users.values())

    def check(self, header: str | None) -> bool:
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = hmac.new(self._salt, user + b"\0" + password, hashlib.sha256).digest()
        with self._lock:
            if digest in self._passed:
                return True
        import bcrypt

        name = user.decode("utf-8", "replace")
        hashed = self.users.get(name, self._dummy)
        try:
            matched = bcrypt.checkpw(password, hashed)
        except ValueError:  # longer than bcrypt's 72 bytes, or a NUL byte
            return False
        if not matched or name not in self.users:
            return False
        with self._lock:
            if len(self._passed) >= AUTH_CACHE_SIZE:
                self._passed.pop(next(iter(self._passed)))
            self._passed[digest] = None
        return True


def _dummy_hash(hashes: Iterable[bytes]) -> bytes:
    """A hash to check an unknown user against, at the highest cost of the users' own, so a
    wrong user name costs what a wrong password costs."""
    costs = [int(hashed.split(b"$")[2]) for hashed in hashes if hashed.count(b"$") >= 3]
    cost = max(costs, default=10)
    if cost == 10:
        return _DUMMY_HASH
    import bcrypt

    return bcrypt.hashpw(b"unknown user", bcrypt.gensalt(rounds=cost))


def parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) of a `Basic` Authorization header, or None when it is anything else."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or len(encoded) > 4096:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def authorized(handler: BaseHTTPRequestHandler, auth: BasicAuth | None) -> bool:
    """Whether the request may proceed; otherwise a 401 with a Basic challenge has been sent."""
    if auth is None or auth.check(handler.headers.get("Authorization")):
        return True
    body = b"unauthorized\n"
    handler.send_response(401)
    handler.send_header("WWW-Authenticate", 'Basic realm="cpx-exporter"')
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
    return False


class WebServerMixin:
    """For a `socketserver` TCP server: TLS on accepted connections when `web_tls` is set.

    The handshake runs in the connection's own thread (not in the accept loop), bounded by
    HANDSHAKE_TIMEOUT; a client that fails it (plain HTTP, an untrusted client certificate)
    is dropped without a traceback.
    """

    web_tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        request, address = super().get_request()  # type: ignore[misc]
        if self.web_tls is None:
            return request, address
        return self.web_tls.wrap_socket(
            request, server_side=True, do_handshake_on_connect=False
        ), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(HANDSHAKE_TIMEOUT)
                request.do_handshake()
            except (TimeoutError, OSError):
                return
        super().finish_request(request, client_address)  # type: ignore[misc]
