"""The other input surfaces under hypothesis, each through its real parser: CPX answers and
headers through the real commands (a hostile CPX stand-in on loopback), raw requests to a
running exporter, and recording lines. The profile is that of `test_fuzz_cli.py`
(`CLI_DEVOPS_FUZZ=long` for the long run)."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_devops.exporter.events import EventLog
from cli_devops.exporter.listener import bound_listener
from cli_devops.exporter.server import Exporter
from cli_devops.settings import ClientSettings
from cli_devops.top.recording import read_recording

from .hostile import HostileCpx, Reply, ips
from .test_fuzz_cli import DOCUMENTED_EXITS, PROFILE, WHOLE_RUN

SECRET = "s3cretTOKEN"
JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
FIELD = st.one_of(
    st.sampled_from([50, 0, 100, 100.1, -1, "61%", "nan", "NaN%", "1e999", None, True, "", 1e308]),
    JSON,
)
INSTANCE = st.one_of(
    st.fixed_dictionaries({"service": st.one_of(st.sampled_from(["Api", "\x1b[31m", ""]), JSON),
                           "cpu": FIELD, "memory": FIELD}).map(json.dumps).map(str.encode),
    st.binary(max_size=40),
)  # fmt: skip
REPLY = st.builds(
    Reply,
    kind=st.just("json"),
    delay=st.just(0.0),
    status=st.sampled_from([200, 200, 200, 500, 503, 429, 404, 302]),
    body=INSTANCE,
    headers=st.lists(
        st.tuples(st.sampled_from(["Retry-After", "Location", "Content-Encoding"]),
                  st.sampled_from(["1", "-1", "nan", "1e999", "Wed, 21 Oct 2015 07:28:00 GMT",
                                   "http://127.0.0.1:1/x", "gzip", f"http://u:{SECRET}@127.0.0.1:1/"])),
        max_size=2,
    ).map(tuple),
)  # fmt: skip


@pytest.fixture(scope="module")
def api() -> Iterator[HostileCpx]:
    with HostileCpx(ips(4)) as server:
        yield server


@pytest.mark.slow
@WHOLE_RUN
@settings(settings.get_profile(PROFILE))
@given(
    replies=st.lists(REPLY, min_size=4, max_size=4),
    command=st.sampled_from([["services", "-o", "json"], ["status"], ["unhealthy-services"],
                             ["track", "Api", "--count", "1", "-o", "json"]]),
)  # fmt: skip
def test_any_cpx_answer_keeps_the_contract(cli, api, replies, command):
    by_path = {f"/{ip}": reply for ip, reply in zip(ips(4), replies, strict=False)}
    api.instance = lambda path: by_path.get(path, Reply(status=404))
    result = cli("--cp-url", api.url, "--token", SECRET, "--retries", "0", "--timeout", "2",
                 *command)  # fmt: skip
    assert result.exit_code in DOCUMENTED_EXITS, result
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert SECRET not in output
    assert "\x1b" not in output
    assert sum(line.startswith("cli_devops: error:") for line in result.stderr.splitlines()) <= 1


@pytest.fixture(scope="module")
def exporter(api: HostileCpx) -> Iterator[tuple[Exporter, io.StringIO]]:
    log = io.StringIO()
    server = Exporter(ClientSettings(base_url=api.url, retries=0), events=EventLog(log))
    with server:
        bound_listener(server._servers[0].httpd, idle_timeout=0.5)  # type: ignore[arg-type]
        yield server, log


REQUEST_LINES = st.one_of(
    st.sampled_from([b"GET /metrics HTTP/1.1", b"HEAD / HTTP/1.1", b"GET /-/healthy HTTP/1.0",
                     b"POST /metrics HTTP/1.1", b"GET " + b"/" * 70000 + b" HTTP/1.1",
                     b"GET /metrics HTTP/9.9", b"\x16\x03\x01\x02\x00", b""]),
    st.binary(max_size=60),
)  # fmt: skip
HEADERS = st.lists(
    st.one_of(
        st.sampled_from([b"Authorization: Basic !!!", b"Accept-Encoding: gzip;q=nan",
                         b"X-Prometheus-Scrape-Timeout-Seconds: -1e999", b"Accept: */*;q=2",
                         b"Content-Length: -5", b"Transfer-Encoding: chunked", b"Host"]),
        st.binary(max_size=30),
    ),
    max_size=4,
)  # fmt: skip


@pytest.mark.slow
@WHOLE_RUN
@settings(settings.get_profile(PROFILE))
@given(line=REQUEST_LINES, headers=HEADERS, finish=st.booleans())
def test_any_request_to_the_exporter_is_answered_or_closed(exporter, line, headers, finish):
    server, log = exporter
    request = b"\r\n".join([line, *headers]) + (b"\r\n\r\n" if finish else b"")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
        client.sendall(request)
        answer = client.recv(12)
    assert answer == b"" or answer.startswith(b"HTTP/1."), answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
        client.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert client.recv(12) == b"HTTP/1.1 200"
    assert "Traceback" not in log.getvalue()


@settings(settings.get_profile(PROFILE))
@given(lines=st.lists(st.one_of(st.binary(max_size=80), JSON.map(json.dumps).map(str.encode),
                                st.fixed_dictionaries({"time": st.text(max_size=30),
                                                       "instances": st.lists(JSON, max_size=2),
                                                       "error": JSON}
                                                      ).map(json.dumps).map(str.encode)),
                      max_size=5))  # fmt: skip
def test_any_recording_line_is_a_poll_or_skipped(lines):
    recording = read_recording(lines)
    assert len(recording.readings) + recording.skipped <= len(lines)
    for reading in recording.readings:
        for instance in reading.instances:
            assert instance.cpu is None or 0 <= instance.cpu <= 100
