"""A small hostile CPX stand-in on loopback: instances that hang, trickle, rate-limit, redirect
with credentials, or answer any JSON a test picks; /servers of any length.

Written on asyncio streams so that thousands of hung connections cost no thread each. Used
in-process by the tests (`HostileCpx`, a background loop thread) and as a process by the
benchmark and the signal tests:

    python -m tests.hostile --fleet 150 --mode hang      # prints "serving http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import NamedTuple


class Reply(NamedTuple):
    """What to send for one request. `kind`: "json" (status, body, headers), "hang" (nothing,
    until the client hangs up), "trickle" (headers, then the body one byte per `delay`)."""

    kind: str = "json"
    status: int = 200
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


def ips(count: int) -> list[str]:
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, count + 1)]


def healthy(path: str) -> Reply:
    return Reply(body=b'{"cpu": "10%", "memory": "20%", "service": "S"}')


def hang(path: str) -> Reply:
    return Reply("hang")


def too_many(retry_after: float) -> Callable[[str], Reply]:
    def reply(path: str) -> Reply:
        return Reply(status=429, body=b"{}", headers=(("Retry-After", f"{retry_after:g}"),))

    return reply


def slow(seconds: float) -> Callable[[str], Reply]:
    def reply(path: str) -> Reply:
        return Reply(body=healthy(path).body, delay=seconds)

    return reply


_REASONS = {200: "OK", 302: "Found", 429: "Too Many Requests", 503: "Service Unavailable"}


class HostileCpx:
    """The stand-in: `/servers` lists `servers` (a list, or raw bytes), every other path gets
    `instance(path)`; `servers_reply` replaces the /servers answer when set. `requests`
    counts requests by path."""

    def __init__(
        self,
        servers: list[str] | bytes,
        instance: Callable[[str], Reply] = healthy,
        servers_reply: Reply | None = None,
    ) -> None:
        self.servers_body = servers if isinstance(servers, bytes) else json.dumps(servers).encode()
        self.instance = instance
        self.servers_reply = servers_reply
        self.routes: dict[str, Reply] = {}
        self.requests: collections.Counter[str] = collections.Counter()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> HostileCpx:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        port = future.result(10)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self._thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def request_count(self) -> int:
        return sum(self.requests.values())

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        return int(self._server.sockets[0].getsockname()[1])

    def _reply(self, path: str) -> Reply:
        if path in self.routes:
            return self.routes[path]
        if path == "/servers":
            return self.servers_reply or Reply(body=self.servers_body)
        return self.instance(path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode("latin-1")
                self.requests[path] += 1
                reply = self._reply(path)
                if reply.kind == "hang":
                    await reader.read()  # until the client hangs up
                    return
                headers = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
                reason = _REASONS.get(reply.status, "Whatever")
                writer.write(
                    f"HTTP/1.1 {reply.status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(reply.body)}\r\n{headers}\r\n".encode()
                )
                if reply.kind == "trickle":
                    for index in range(len(reply.body)):
                        writer.write(reply.body[index : index + 1])
                        await writer.drain()
                        await asyncio.sleep(reply.delay)
                else:
                    if reply.delay:
                        await asyncio.sleep(reply.delay)
                    writer.write(reply.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="A hostile CPX stand-in.")
    parser.add_argument("--fleet", type=int, default=150)
    parser.add_argument("--mode", choices=["ok", "hang", "429", "slow"], default="ok")
    parser.add_argument("--retry-after", type=float, default=9.0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    modes: dict[str, Callable[[str], Reply]] = {
        "ok": slow(args.latency) if args.latency else healthy,
        "hang": hang,
        "429": too_many(args.retry_after),
        "slow": slow(args.latency),
    }
    server = HostileCpx(ips(args.fleet), modes[args.mode])
    url = server.start()
    print(f"serving {url}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
