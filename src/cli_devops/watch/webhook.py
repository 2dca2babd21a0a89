"""The webhook: each event's JSON POSTed with an HMAC-SHA256 signature of the body.

The receiver checks `X-Cli-Devops-Signature: sha256=<hex>` against its copy of the secret
(`hmac.compare_digest`); `X-Cli-Devops-Event` names the event's kind. The secret comes from a
file that only its owner may read, as the config file holding a token must be.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

from cli_devops.errors import UsageError
from cli_devops.reading import NotRegularFile, read_regular
from cli_devops.watch.events import Event
from cli_devops.watch.posting import Poster, Target

SIGNATURE_HEADER = "X-Cli-Devops-Signature"
MAX_SECRET_FILE = 4096


def read_secret(path: Path) -> bytes:
    """The secret in `path`, one trailing newline stripped. Refused: a file that is not
    regular, that group or others can read, that is empty or larger than 4 KiB. The secret is
    never part of a message."""
    try:
        data, mode = read_regular(path, MAX_SECRET_FILE)
    except NotRegularFile:
        raise UsageError(f"secret file {path} is not a regular file") from None
    except OSError as err:
        raise UsageError(f"cannot read secret file {path}: {err.strerror or err}") from None
    if os.name == "posix" and mode & 0o077:
        raise UsageError(
            f"secret file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}"
        )
    if len(data) > MAX_SECRET_FILE:
        raise UsageError(f"secret file {path} is larger than {MAX_SECRET_FILE} bytes")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise UsageError(f"secret file {path} is empty")
    return data


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Webhook:
    """Where events are POSTed, and the key their signatures are made with."""

    def __init__(self, target: Target, secret: bytes) -> None:
        self.target = target
        self._secret = secret

    def __repr__(self) -> str:  # never the secret, whatever prints this
        return f"Webhook({self.target.shown!r})"

    async def send(self, poster: Poster, event: Event) -> str | None:
        """Deliver `event` once; None when delivered, else why not."""
        body = event.to_json().encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, body),
            "X-Cli-Devops-Event": event.kind,
        }
        return await poster.post(self.target, body, headers)
