"""The one HTTP layer (`client/http.py`): what posts (webhooks, Alertmanager) goes through the same
retries, Retry-After, budget, token and size caps as the reads, against a real server."""

from __future__ import annotations

import ast
import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cli_devops.client import ClientSettings, HttpFailure, HttpSession, ReadBudget, Send

SOURCE = Path(__file__).resolve().parent.parent / "src" / "cli_devops"


class Receiver(ThreadingHTTPServer):
    """Answers the first `busy` POSTs 503 with Retry-After: 0, then 202; keeps what it got."""

    def __init__(self, busy: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.busy = busy
        self.received: list[tuple[str, str, str | None, bytes]] = []


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.received.append(
            (
                self.path,
                self.headers.get("Content-Type", ""),
                self.headers.get("Authorization"),
                body,
            )
        )
        status = 503 if len(self.server.received) <= self.server.busy else 202
        payload = b'{"status": "success"}'
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def post(url: str, body: bytes, retries: int = 3, token: str | None = None) -> bytes:
    async def run() -> bytes:
        settings = ClientSettings(url, retries=retries, token=token, timeout=5.0)
        async with HttpSession(settings) as http:
            return await http.request("/api/v2/alerts", 1024, ReadBudget(retries), send=Send(body))

    return asyncio.run(run())


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_a_post_is_retried_as_a_read_is_and_carries_its_body_and_token(receiver):
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    alert = json.dumps([{"labels": {"alertname": "CpxServiceUnhealthy"}}]).encode()
    assert post(url, alert, token="s3cr3t") == b'{"status": "success"}'
    assert [entry[0] for entry in receiver.received] == ["/api/v2/alerts"] * 3
    assert {entry[1:] for entry in receiver.received} == {
        ("application/json", "Bearer s3cr3t", alert)
    }


@pytest.mark.parametrize("receiver", [5], indirect=True)
def test_a_post_gives_up_after_its_retries_with_the_last_reason(receiver):
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    with pytest.raises(HttpFailure, match="HTTP 503") as failure:
        post(url, b"[]", retries=1)
    assert failure.value.status == 503
    assert len(receiver.received) == 2


def test_there_is_one_retry_loop():
    """Only `HttpSession.request` decides retries: no other module asks the budget for a wait."""
    callers = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "retry_wait":
                callers.append(path.relative_to(SOURCE).as_posix())
    assert callers == ["client/http.py"]
