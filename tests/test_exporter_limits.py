"""The exporter's listener is bounded: idle and slow clients cannot starve a scrape, HEAD has
no body, and an unknown user costs what a wrong password costs."""

from __future__ import annotations

import base64
import http.client
import resource
import socket
import statistics
import subprocess
import sys
import time

import bcrypt
import pytest

from cli_devops.exporter.listener import bound_listener
from cli_devops.exporter.server import Exporter
from cli_devops.settings import ClientSettings

from .conftest import hermetic_environ, stop_process

UNDER_1024_FILES = (
    "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)); "
    "sys.argv[0] = 'cli_devops'; runpy.run_module('cli_devops', run_name='__main__')"
)
"""The exporter under the common limit of 1,024 open files."""


@pytest.mark.slow
@pytest.mark.parametrize("half_request", [False, True], ids=["idle", "half-request"])
def test_a_thousand_held_connections_do_not_starve_a_scrape(sim, half_request):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1200:
        pytest.fail(f"the test needs 1,200 open files for its own clients (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    process = subprocess.Popen(
        [sys.executable, "-c", UNDER_1024_FILES, "--cp-url", sim.url, "exporter",
         "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
    )  # fmt: skip
    held: list[socket.socket] = []
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        port = int(line.split("127.0.0.1:", 1)[1].split("/", 1)[0])
        for _ in range(1000):
            client = socket.create_connection(("127.0.0.1", port))
            if half_request:
                client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            held.append(client)
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read()
        took = time.monotonic() - started
        connection.close()
        assert response.status == 200
        assert b"cpx_up 1" in body
        assert took < 10  # Prometheus's default scrape timeout; a hang is the failure
    finally:
        for client in held:
            client.close()
        _, err = stop_process(process, sig=15)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_a_client_that_stops_sending_is_dropped_after_the_idle_timeout(sim):
    exporter = Exporter(ClientSettings(base_url=sim.url))
    with exporter:
        bound_listener(exporter._servers[0].httpd, idle_timeout=0.5)
        client = socket.create_connection(("127.0.0.1", exporter.port))
        client.sendall(b"GET /metrics HTTP/1.1\r\n")
        client.settimeout(30)
        started = time.monotonic()
        assert client.recv(100) in (b"", b"HTTP/1.1 408")  # closed by the exporter
        assert time.monotonic() - started < 20
        client.close()


@pytest.mark.parametrize("path", ["/metrics", "/nowhere", "/-/healthy"])
def test_head_answers_carry_no_body_even_when_refused(sim, path):
    exporter = Exporter(ClientSettings(base_url=sim.url))
    exporter.web = exporter.web.__class__(users={"u": bcrypt.hashpw(b"p", bcrypt.gensalt(4))})
    with exporter:
        for auth in (None, "Basic " + base64.b64encode(b"u:p").decode()):
            client = socket.create_connection(("127.0.0.1", exporter.port))
            client.settimeout(10)
            headers = f"Authorization: {auth}\r\n" if auth else ""
            client.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
            client.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n"
                           + (f"Authorization: {auth}\r\n".encode() if auth else b"")
                           + b"Connection: close\r\n\r\n")  # fmt: skip
            data = b""
            while chunk := client.recv(65536):
                data += chunk
            client.close()
            _, _, rest = data.partition(b"\r\n\r\n")
            # the next bytes after HEAD's headers are the second answer's status line
            assert rest.startswith(b"HTTP/1.1 "), data[:300]


@pytest.mark.slow
def test_an_unknown_user_costs_what_a_wrong_password_costs(sim):
    exporter = Exporter(ClientSettings(base_url=sim.url))
    exporter.web = exporter.web.__class__(users={"u": bcrypt.hashpw(b"p", bcrypt.gensalt(12))})
    auth = exporter.auth
    assert auth is not None

    def cost(user: bytes) -> float:
        header = "Basic " + base64.b64encode(user + b":wrong").decode()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            assert not auth.check(header)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = cost(b"u"), cost(b"nobody")
    assert 0.5 < unknown / known < 2, (known, unknown)
