"""Whatever a Prometheus answers, the commands end with an exit code of the README and at most
one error line: a small query API on loopback serves generated answers to the real CLI."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (the CLI gave up after a bad answer) is no test failure."""


class FakePrometheus:
    """Answers `/api/v1/query`: `matrix` for range selectors (`...[300s]`), else `vector`
    (or `raw` bytes for every query when set)."""

    def __init__(self) -> None:
        self.matrix: bytes = b""
        self.vector: bytes = b""
        self.raw: bytes | None = None
        self.authorization: list[str | None] = []
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.authorization.append(self.headers.get("Authorization"))
                query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
                body = fake.raw
                if body is None:
                    body = fake.matrix if query.endswith("s]") else fake.vector
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    yield server
    server.stop()


def answer(result: object, result_type: str) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": result_type, "result": result}}
    ).encode()


def target_matrix(now: float) -> bytes:
    points = [[now - 2, "1"], [now - 1, "1"]]
    return answer([{"metric": {"instance": "t:1", "job": "cpx"}, "values": points}], "matrix")


values = st.one_of(
    st.sampled_from(["0.5", "NaN", "+Inf", "-Inf", "1e999", "-0", "0.9", "1", "0", "2", "1_0"]),
    st.floats().map(repr),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.none(),
    st.text(max_size=5),
)
label_values = st.one_of(
    st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "10.0.0.01", "999.0.0.1", "", " ", "A"]),
    st.text(max_size=10),
    st.integers(),
)
series = st.fixed_dictionaries(
    {
        "metric": st.fixed_dictionaries(
            {
                "ip": label_values,
                "cpx_service": label_values,
                "instance": st.just("t:1"),
                "job": st.just("cpx"),
            }
        ),
        "value": st.tuples(st.one_of(st.just(0.0), st.floats(), st.booleans()), values).map(list),
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    result=st.lists(series, max_size=6),
    command=st.sampled_from(["services", "status", "unhealthy-services"]),
)
def test_any_series_from_prometheus_end_with_a_documented_exit(fake, cli, result, command):
    now = time.time()
    for item in result:
        if item["value"][0] == 0.0:
            item["value"][0] = now
    fake.raw = None
    fake.matrix = target_matrix(now)
    fake.vector = answer(result, "vector")
    outcome = cli("--prometheus-url", fake.url, "--retries", "0", command, "-o", "json")
    assert outcome.exit_code in (0, 1, 3), outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert all(line.startswith("cli_devops: ") for line in outcome.stderr.splitlines())
    if outcome.exit_code == 3:
        assert outcome.stdout == ""
        assert len(outcome.stderr.splitlines()) == 1
        assert "unusable answer from Prometheus" in outcome.stderr
    else:
        json.loads(outcome.stdout)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=100), st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
).map(lambda value: json.dumps(value).encode())))  # fmt: skip
def test_any_body_from_prometheus_is_exit_3_or_read(fake, cli, body):
    fake.raw = body
    outcome = cli("--prometheus-url", fake.url, "--retries", "0", "services", "-o", "json")
    assert outcome.exit_code == 3, outcome
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("cli_devops: error: unusable answer from Prometheus at ")
    assert len(outcome.stderr.splitlines()) == 1


def test_an_error_answer_is_quoted_in_one_line(fake, cli):
    fake.raw = (
        b'{"status": "error", "errorType": "timeout", "error": "query timed out\\n\\u001b[31m"}'
    )
    outcome = cli("--prometheus-url", fake.url, "status")
    assert outcome.exit_code == 3
    assert outcome.stderr == (
        f"cli_devops: error: unusable answer from Prometheus at {fake.url}: "
        "Prometheus answered an error: timeout: query timed out[31m\n"
    )


@pytest.mark.parametrize(
    ("args", "sent"),
    [
        (["--prometheus-token", "s3cret"], "Bearer s3cret"),
        (["--token", "cpx-only"], None),  # the CPX token never goes to Prometheus
        (["--userinfo"], "Basic " + base64.b64encode(b"ops:p@ss word").decode()),
    ],
)
def test_prometheus_gets_its_own_credentials_only(cli, args, sent):
    fake = FakePrometheus()  # its own: no request of another test arrives late
    fake.matrix = target_matrix(time.time())
    fake.vector = answer([], "vector")
    url = fake.url
    if args == ["--userinfo"]:
        args, url = [], url.replace("http://", "http://ops:p%40ss%20word@")
    try:
        outcome = cli(
            "--prometheus-url", url, "--token", "cpx-token", *args, "status", "-o", "json"
        )
    finally:
        fake.stop()
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == "[]\n"
    assert fake.authorization and set(fake.authorization) == {sent}
    assert "s3cret" not in outcome.stderr + outcome.stdout


def test_refused_credentials_are_exit_3_in_one_line(cli):
    fake = FakePrometheus()
    fake.status, fake.raw = 401, b'{"status": "error", "error": "unauthorized"}'
    try:
        outcome = cli("--prometheus-url", fake.url, "--prometheus-token", "wrong", "status")
    finally:
        fake.stop()
    assert outcome.exit_code == 3
    assert outcome.stderr == (
        f"cli_devops: error: cannot query Prometheus at {fake.url}: HTTP 401, "
        "the credentials were refused\n"
    )
