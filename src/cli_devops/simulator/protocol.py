"""The simulator's HTTP: just enough HTTP/1.x on :class:`asyncio.Protocol`, one per connection.

The protocol knows the server only through :class:`ProtocolHost`, the few things it reads
(the fleet, faults, latency, token, headers to send) and the counters and connection set it
reports to.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit

from cli_devops.simulator.faults import Fault, FaultPlan
from cli_devops.simulator.fleet import INVALID_IP_BODY, Fleet, error_body

MAX_HEADER_BYTES = 16 * 1024
"""Largest request head (request line + headers) the simulator accepts before answering 431."""

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}


class DateHeader:
    """``Date:`` header line, formatted at most once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
            self._second = second
        return self._line


class _BadRequest(Exception):
    """A request the connection cannot continue after; carries the status to answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_HEADERS_THAT_MATTER = frozenset(
    (b"connection", b"content-length", b"transfer-encoding", b"authorization")
)
"""Header names :meth:`HttpProtocol._read_headers` acts on (the others are only checked)."""

_RESPONSE_HEAD = b"%s%s%sContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n%s"
"""Status line, Server (and X-Worker), Date, length, extra headers, Connection, body."""

_FLOOD_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: cpx-simulator\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\n\r\n"
)
_FLOOD_CHUNK = b'{"cpu": "1%", ' * 4096
_FLOOD_BUFFER = 256 * 1024


def _origin_form(target: bytes) -> bytes:
    """``/path?query`` of an absolute-form target (a request sent through a proxy)."""
    parts = urlsplit(target.decode("latin-1"))
    path = parts.path or "/"
    return (f"{path}?{parts.query}" if parts.query else path).encode("latin-1")


class ProtocolHost(Protocol):
    """What :class:`HttpProtocol` needs from the server it answers for.

    It reads the settings, counts each request target in ``request_paths`` and each
    Authorization value in ``auth_headers``, takes its ``Date:`` line from ``date_header`` and
    reports each connection to ``connection_made`` and ``connection_lost`` (the server aborts
    the open ones when it stops).
    """

    fleet: Fleet
    latency_ms: float
    faults: FaultPlan | None
    token: str | None
    server_header: bytes
    """``Server:`` (and ``X-Worker:``) header lines, sent with every regular answer."""
    request_paths: collections.Counter[str]
    auth_headers: collections.Counter[str]
    date_header: DateHeader

    def connection_made(self, connection: HttpProtocol) -> None: ...

    def connection_lost(self, connection: HttpProtocol) -> None: ...


class HttpProtocol(asyncio.Protocol):
    """One client connection of the simulator, answering for ``server`` on ``loop``.

    Parses just enough HTTP/1.x: the request line, ``Connection``, ``Content-Length`` (the body
    is skipped) and ``Transfer-Encoding`` (refused). Pipelined requests are answered in order;
    responses produced by one read are written with a single ``write``.
    """

    def __init__(self, server: ProtocolHost, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._skip = 0
        self._closing = False
        self._pending: deque[tuple[float, bytes, bool]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._authorization: str | None = None
        self._tail: Fault | None = None
        self._flooding = False
        self._plain_headers: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connection_lost(self)
        self._closing = True
        self._flooding = False
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._flooding:
            self._flood()
        elif self._transport is not None and not self._closing:
            self._transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection at once (the server stopping)."""
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        buffer = self._buffer + data if self._buffer else data
        responses: list[tuple[bytes, bool]] = []
        while buffer:
            if self._skip:
                skipped = min(self._skip, len(buffer))
                self._skip -= skipped
                buffer = buffer[skipped:]
                continue
            if buffer[:2] == b"\r\n":
                buffer = buffer.lstrip(b"\r\n")
                continue
            end = buffer.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEADER_BYTES:
                if end > MAX_HEADER_BYTES or len(buffer) > MAX_HEADER_BYTES:
                    responses.append((self._error(431), False))
                    buffer = b""
                break
            head = buffer[:end]
            buffer = buffer[end + 4 :]
            try:
                response, keep_alive = self._handle(head)
            except _BadRequest as bad:
                response, keep_alive = self._error(bad.status), False
            responses.append((response, keep_alive))
            if not keep_alive:
                buffer = b""
                break
        self._buffer = buffer
        if responses:
            self._send(responses)

    def _send(self, responses: list[tuple[bytes, bool]]) -> None:
        keep_alive = responses[-1][1]
        if not keep_alive:
            self._closing = True
        payload = responses[0][0] if len(responses) == 1 else b"".join(r for r, _ in responses)
        delay = self._server.latency_ms / 1000.0
        if delay > 0:
            self._pending.append((self._loop.time() + delay, payload, keep_alive))
            if self._timer is None:
                self._timer = self._loop.call_at(self._pending[0][0], self._flush)
            return
        transport = self._transport
        if keep_alive and transport is not None and not transport.is_closing():
            transport.write(payload)
        else:
            self._write(payload, keep_alive)

    def _flush(self) -> None:
        self._timer = None
        now = self._loop.time()
        while self._pending and self._pending[0][0] <= now:
            _, payload, keep_alive = self._pending.popleft()
            self._write(payload, keep_alive)
        if self._pending:
            self._timer = self._loop.call_at(self._pending[0][0], self._flush)

    def _write(self, payload: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(payload)
        if keep_alive:
            return
        tail, self._tail = self._tail, None
        if tail is None:
            transport.close()
        elif tail.kind == "flood":
            self._flooding = True
            self._flood()
        else:
            self._loop.call_later(tail.delay, self._write, tail.body or b"", False)

    def _flood(self) -> None:
        """Keep the send buffer topped up until the client hangs up (flow-controlled)."""
        transport = self._transport
        while (
            self._flooding
            and transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() < _FLOOD_BUFFER
        ):
            transport.write(_FLOOD_CHUNK)

    def _handle(self, head: bytes) -> tuple[bytes, bool]:
        request_line, crlf, block = head.partition(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3:
            raise _BadRequest(400)
        method, target, version = parts
        if version == b"HTTP/1.1":
            http10 = False
        elif version == b"HTTP/1.0":
            http10 = True
        elif version.startswith(b"HTTP/"):
            raise _BadRequest(505)
        else:
            raise _BadRequest(400)
        keep_alive = not http10
        self._authorization = None
        if crlf and block != self._plain_headers:
            keep_alive = self._read_headers(block, keep_alive)
        if target[:1] != b"/" and target.startswith((b"http://", b"https://")):
            target = _origin_form(target)
        path = target.decode("latin-1")
        server = self._server
        server.request_paths[path] += 1
        if self._authorization is not None:
            server.auth_headers[self._authorization] += 1
        if server.token is not None and self._authorization != f"Bearer {server.token}":
            unauthorized = Fault.answer(401, headers=(("WWW-Authenticate", "Bearer"),))
            return self._faulty(unauthorized, method, target, path, http10, keep_alive)
        faults = server.faults
        if faults is not None:
            fault = faults(path, server.request_paths[path])
            if fault is not None:
                return self._faulty(fault, method, target, path, http10, keep_alive)
        return self._respond(method, target, path, http10, keep_alive), keep_alive

    def _faulty(  # noqa: PLR0913, PLR0917 -- the parsed request, as _respond takes it
        self, fault: Fault, method: bytes, target: bytes, path: str, http10: bool, keep_alive: bool
    ) -> tuple[bytes, bool]:
        """The bytes to send now for a faulty answer; what follows later is left in _tail."""
        if fault.kind == "answer":
            body = error_body(fault.status) if fault.body is None else fault.body
            extra = b"".join(f"{name}: {value}\r\n".encode() for name, value in fault.headers)
            message = self._message(
                fault.status, body, http10, keep_alive, extra, method == b"HEAD"
            )
            return message, keep_alive
        if fault.kind == "drop":
            return b"", False
        if fault.kind == "raw":
            return fault.body or b"", False
        if fault.kind == "flood":
            self._tail = fault
            return _FLOOD_HEAD, False
        normal = self._respond(method, target, path, http10, False)
        split = normal.find(b"\r\n\r\n") + 4
        if fault.kind == "cut":
            return normal[: split + (len(normal) - split) // 2], False
        self._tail = fault._replace(body=normal[split:])
        return normal[:split], False

    def _respond(
        self, method: bytes, target: bytes, path: str, http10: bool, keep_alive: bool
    ) -> bytes:
        server = self._server
        if method not in (b"GET", b"HEAD"):
            status, body = 405, error_body(405)
        elif target == b"/servers":
            status, body = 200, server.fleet.servers_body()
        elif target[:1] == b"/":
            status, body = server.fleet.instance_response(path[1:], time.time())
        else:
            status, body = 400, INVALID_IP_BODY
        extra = b"Allow: GET, HEAD\r\n" if status == 405 else b""
        return self._message(status, body, http10, keep_alive, extra, method == b"HEAD")

    def _message(  # noqa: PLR0913, PLR0917 -- the parts of one HTTP response
        self, status: int, body: bytes, http10: bool, keep_alive: bool, extra: bytes, head: bool
    ) -> bytes:
        if http10 and keep_alive:
            connection = b"Connection: keep-alive\r\n"
        elif keep_alive:
            connection = b""
        else:
            connection = b"Connection: close\r\n"
        server = self._server
        return _RESPONSE_HEAD % (
            _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode(),
            server.server_header,
            server.date_header.line(time.time()),
            len(body),
            extra,
            connection,
            b"" if head else body,
        )

    def _read_headers(self, block: bytes, keep_alive: bool) -> bool:
        """Apply the headers that matter; returns whether the connection stays open.

        A block with none of them is remembered: clients repeat the same headers on every
        request of a connection, and the next identical block is not parsed again.
        """
        plain = True
        for line in block.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon:
                raise _BadRequest(400)
            name = name.lower()
            if name not in _HEADERS_THAT_MATTER:
                continue
            plain = False
            if name == b"connection":
                tokens = [token.strip() for token in value.lower().split(b",")]
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise _BadRequest(400) from None
                if length < 0:
                    raise _BadRequest(400)
                self._skip += length
            elif name == b"transfer-encoding":
                raise _BadRequest(501)
            elif name == b"authorization":
                self._authorization = value.strip().decode("latin-1")
        if plain:
            self._plain_headers = block
        return keep_alive

    def _error(self, status: int) -> bytes:
        body = error_body(status)
        return b"".join(
            (
                _STATUS_LINES[status],
                b"Server: cpx-simulator\r\nContent-Type: application/json\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\nConnection: close\r\n\r\n",
                body,
            )
        )
