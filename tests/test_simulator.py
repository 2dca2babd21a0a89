"""The simulators are the fixtures of every other test, so they are tested over real loopback
sockets with the standard library's HTTP client, never mocked."""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

import cli_devops
from cli_devops.simulator import (
    SERVICE_NAMES,
    Fleet,
    ReferenceServer,
    SimInstance,
    SimulatorServer,
    serve,
)

from .conftest import needs_ipv6

INVALID_IP = {"error": "Invalid IP"}
JUNK: list[object] = ["../etc/passwd", "example.com", 42, None, "10.0.0.1/servers", {"ip": 1}]


def small_fleet() -> Fleet:
    return Fleet(
        {
            "10.0.0.1": SimInstance("UserService", 61, 4),
            "10.0.0.2": SimInstance("AuthService", 61.5, 99.25),
        }
    )


@pytest.fixture
def fleet() -> Fleet:
    return small_fleet()


@pytest.fixture
def sim(fleet: Fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(fleet) as server:
        yield server


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, object]:
    """One request on a fresh connection; returns (status, decoded JSON body)."""
    conn = http.client.HTTPConnection(host, port)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """Send ``data`` and read until the server closes the connection."""
    with socket.create_connection((host, port)) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def read_response(stream: BinaryIO, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Parse one Content-Length-framed response from a socket file (for pipelining tests)."""
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b"" if head_only else stream.read(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


# --- Fleet -----------------------------------------------------------------------------------


def test_servers_body_lists_ips_in_order_then_junk() -> None:
    fleet = small_fleet()
    assert json.loads(fleet.servers_body()) == ["10.0.0.1", "10.0.0.2"]
    fleet.junk_servers = JUNK
    assert json.loads(fleet.servers_body()) == ["10.0.0.1", "10.0.0.2", *JUNK]


def test_servers_body_follows_fleet_changes() -> None:
    fleet = small_fleet()
    fleet.servers_body()
    del fleet.instances["10.0.0.1"]
    fleet.instances["10.0.0.3"] = SimInstance("IdService", 1, 2)
    assert json.loads(fleet.servers_body()) == ["10.0.0.2", "10.0.0.3"]


def test_instance_response_formats_base_values_like_the_api() -> None:
    fleet = small_fleet()
    assert fleet.instance_response("10.0.0.1", 0.0) == (
        200,
        b'{"cpu": "61%", "memory": "4%", "service": "UserService"}',
    )
    status, body = fleet.instance_response("10.0.0.2", 1e9)
    assert (status, json.loads(body)) == (
        200,
        {"cpu": "61.5%", "memory": "99.25%", "service": "AuthService"},
    )
    assert fleet.instance_response("10.0.0.9", 0.0) == (400, b'{"error": "Invalid IP"}')


def test_generate_is_deterministic_for_a_seed() -> None:
    first, second = Fleet.generate(150, seed=7), Fleet.generate(150, seed=7)
    assert first.drift
    assert first.instances == second.instances
    now = 1_700_000_000.0
    assert first.snapshot(now) == second.snapshot(now)
    assert first.snapshot(now) != Fleet.generate(150, seed=8).snapshot(now)


def test_generate_without_seed_records_the_seed_it_picked() -> None:
    fleet = Fleet.generate(30)
    assert Fleet.generate(30, seed=fleet.seed).instances == fleet.instances


@pytest.mark.slow
def test_generate_100k_instances_with_unique_private_ips() -> None:
    fleet = Fleet.generate(100_000, seed=1)
    ips = list(fleet.instances)
    assert len(ips) == len(set(ips)) == 100_000
    assert ips[:2] == ["10.0.0.1", "10.0.0.2"]
    assert ips[254] == "10.0.1.1"
    network = ipaddress.ip_network("10.0.0.0/8")
    for ip in ips:
        address = ipaddress.IPv4Address(ip)
        assert address in network
        assert ip.rsplit(".", 1)[1] not in ("0", "255")


def test_generate_has_under_replicated_services_and_some_overload() -> None:
    fleet = Fleet.generate(150, seed=3)
    counts = Counter(instance.service for instance in fleet.instances.values())
    assert set(counts) <= set(SERVICE_NAMES)
    assert 1 in counts.values()
    assert 2 in counts.values()
    overloaded = [i for i in fleet.instances.values() if i.cpu > 90 or i.memory > 90]
    assert 1 <= len(overloaded) <= 15
    normal = [i for i in fleet.instances.values() if i not in overloaded]
    assert all(10 <= i.cpu <= 70 and 10 <= i.memory <= 70 for i in normal)


@pytest.mark.parametrize("seed", range(20))
def test_generate_under_replication_holds_for_every_seed(seed: int) -> None:
    counts = Counter(i.service for i in Fleet.generate(20, seed=seed).instances.values())
    assert {1, 2} <= set(counts.values())


def test_drift_moves_values_over_time_within_bounds() -> None:
    fleet = Fleet.generate(150, seed=5)
    now = 1_700_000_000.0
    before, later = fleet.snapshot(now), fleet.snapshot(now + 30)
    assert before.keys() == later.keys() == fleet.instances.keys()
    assert before != later
    for service, cpu, memory in [*before.values(), *later.values()]:
        assert service in SERVICE_NAMES
        assert cpu == int(cpu) and 0 <= cpu <= 100
        assert memory == int(memory) and 0 <= memory <= 100


def test_snapshot_matches_what_instance_response_reports() -> None:
    fleet = Fleet.generate(50, seed=9)
    now = 1_700_000_123.5
    for ip, (service, cpu, memory) in fleet.snapshot(now).items():
        status, body = fleet.instance_response(ip, now)
        assert status == 200
        assert json.loads(body) == {
            "cpu": f"{int(cpu)}%",
            "memory": f"{int(memory)}%",
            "service": service,
        }


def test_overloaded_instances_stay_overloaded_while_drifting() -> None:
    fleet = Fleet.generate(400, seed=11)
    hot = {ip for ip, i in fleet.instances.items() if i.cpu > 90}
    assert hot
    for step in range(0, 600, 7):
        snapshot = fleet.snapshot(1_700_000_000.0 + step)
        assert all(snapshot[ip][1] > 90 for ip in hot)


def test_snapshot_leaves_out_overridden_instances() -> None:
    fleet = small_fleet()
    fleet.instances["10.0.0.1"].status = 503
    fleet.instances["10.0.0.2"].raw = b"{}"
    fleet.instances["10.0.0.3"] = SimInstance("IdService", 5, 6)
    assert fleet.snapshot(0.0) == {"10.0.0.3": ("IdService", 5, 6)}


def test_reference_fleet_is_150_instances_on_10_58_1() -> None:
    fleet = Fleet.reference()
    assert list(fleet.instances) == [f"10.58.1.{n}" for n in range(1, 151)]
    assert {i.service for i in fleet.instances.values()} == set(SERVICE_NAMES)
    assert Fleet.reference().instances == fleet.instances


# --- SimulatorServer: endpoints ---------------------------------------------------------------


def test_servers_endpoint_lists_ips_and_junk(sim: SimulatorServer, fleet: Fleet) -> None:
    fleet.junk_servers = JUNK
    assert get(sim.port, "/servers") == (200, ["10.0.0.1", "10.0.0.2", *JUNK])


def test_instance_endpoint_reports_base_values(sim: SimulatorServer) -> None:
    assert get(sim.port, "/10.0.0.1") == (
        200,
        {"cpu": "61%", "memory": "4%", "service": "UserService"},
    )
    assert get(sim.port, "/10.0.0.2") == (
        200,
        {"cpu": "61.5%", "memory": "99.25%", "service": "AuthService"},
    )


@pytest.mark.parametrize(
    "path",
    [
        "/10.9.9.9",
        "/",
        "/servers/",
        "/servers?all=1",
        "/10.0.0.1?x=1",
        "/10.0.0.1/",
        "/../etc/passwd",
        "/example.com",
    ],
)
def test_other_paths_are_invalid_ip(sim: SimulatorServer, path: str) -> None:
    assert get(sim.port, path) == (400, INVALID_IP)


def test_raw_override_is_sent_verbatim(sim: SimulatorServer, fleet: Fleet) -> None:
    fleet.instances["10.0.0.1"].raw = b'{"cpu": "12%", "memory":'
    conn = http.client.HTTPConnection("127.0.0.1", sim.port)
    conn.request("GET", "/10.0.0.1")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert response.read() == b'{"cpu": "12%", "memory":'
    conn.close()


def test_status_override_sends_an_error_body(sim: SimulatorServer, fleet: Fleet) -> None:
    fleet.instances["10.0.0.2"].status = 500
    assert get(sim.port, "/10.0.0.2") == (500, {"error": "Internal Server Error"})


def test_fleet_changes_show_up_between_requests(sim: SimulatorServer, fleet: Fleet) -> None:
    assert get(sim.port, "/servers") == (200, ["10.0.0.1", "10.0.0.2"])
    fleet.instances["10.0.0.3"] = SimInstance("IdService", 10, 20)
    del fleet.instances["10.0.0.1"]
    assert get(sim.port, "/servers") == (200, ["10.0.0.2", "10.0.0.3"])
    assert get(sim.port, "/10.0.0.1") == (400, INVALID_IP)
    assert get(sim.port, "/10.0.0.3")[0] == 200


def test_request_paths_counts_every_request(sim: SimulatorServer) -> None:
    for path in ["/servers", "/10.0.0.1", "/10.0.0.1", "/nope"]:
        get(sim.port, path)
    assert sim.request_paths == Counter({"/servers": 1, "/10.0.0.1": 2, "/nope": 1})


def test_drifting_fleet_is_served_as_its_snapshot() -> None:
    fleet = Fleet.generate(20, seed=2)
    with SimulatorServer(fleet) as server:
        before = time.time()
        status, body = get(server.port, "/10.0.0.5")
        after = time.time()
    assert status == 200
    assert isinstance(body, dict)
    possible = [fleet.snapshot(before)["10.0.0.5"], fleet.snapshot(after)["10.0.0.5"]]
    reported = (body["service"], float(body["cpu"][:-1]), float(body["memory"][:-1]))
    assert reported in possible


# --- SimulatorServer: HTTP handling -----------------------------------------------------------


def test_http11_keep_alive_reuses_the_connection(sim: SimulatorServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port)
    conn.request("GET", "/servers")
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    assert sock is not None
    conn.request("GET", "/10.0.0.1")
    second = conn.getresponse()
    assert second.status == 200
    second.read()
    assert conn.sock is sock
    conn.close()


def test_http10_request_gets_answered_then_closed(sim: SimulatorServer) -> None:
    reply = raw_exchange(sim.port, b"GET /10.0.0.1 HTTP/1.0\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close" in head
    assert json.loads(body) == {"cpu": "61%", "memory": "4%", "service": "UserService"}


def test_http10_keep_alive_when_asked(sim: SimulatorServer) -> None:
    request = b"GET /servers HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        stream = sock.makefile("rb")
        for _ in range(2):
            sock.sendall(request)
            status, headers, body = read_response(stream)
            assert (status, headers["connection"]) == (200, "keep-alive")
            assert json.loads(body) == ["10.0.0.1", "10.0.0.2"]


def test_connection_close_from_client_closes(sim: SimulatorServer) -> None:
    reply = raw_exchange(sim.port, b"GET /servers HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b'["10.0.0.1", "10.0.0.2"]')


def test_pipelined_and_fragmented_requests_are_answered_in_order(sim: SimulatorServer) -> None:
    pipelined = b"GET /10.0.0.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /10.0.0.1 HTTP/1.1\r\n\r\n"
    fragmented = b"GET /servers HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rb")
        sock.sendall(pipelined)
        services = [json.loads(read_response(stream)[2])["service"] for _ in range(2)]
        assert services == ["AuthService", "UserService"]
        for i in range(len(fragmented)):
            sock.sendall(fragmented[i : i + 1])
        assert json.loads(read_response(stream)[2]) == ["10.0.0.1", "10.0.0.2"]


def test_request_body_is_skipped_and_other_methods_get_405(sim: SimulatorServer) -> None:
    body = b"GET /nope HTTP/1.1\r\n\r\n"
    request = (
        b"POST /servers HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
        b"GET /10.0.0.1 HTTP/1.1\r\n\r\n" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        stream = sock.makefile("rb")
        sock.sendall(request)
        status, headers, body = read_response(stream)
        assert (status, headers["allow"]) == (405, "GET, HEAD")
        assert json.loads(body) == {"error": "Method Not Allowed"}
        status, _, body = read_response(stream)
        assert (status, json.loads(body)["service"]) == (200, "UserService")
    assert "/nope" not in sim.request_paths


def test_head_sends_headers_only(sim: SimulatorServer) -> None:
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        stream = sock.makefile("rb")
        sock.sendall(b"HEAD /servers HTTP/1.1\r\n\r\nGET /10.0.0.1 HTTP/1.1\r\n\r\n")
        status, headers, _ = read_response(stream, head_only=True)
        assert (status, headers["content-length"]) == (200, str(len(b'["10.0.0.1", "10.0.0.2"]')))
        status, _, body = read_response(stream)
        assert (status, json.loads(body)["cpu"]) == (200, "61%")


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (b"GET /servers\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /servers HTTP/1.1\r\nno colon here\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /servers HTTP/2.0\r\n\r\n", b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        (
            b"GET /servers HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 501 Not Implemented\r\n",
        ),
        (
            b"GET /servers HTTP/1.1\r\nX-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        ),
    ],
)
def test_bad_requests_get_an_error_and_the_connection_closes(
    sim: SimulatorServer, request_bytes: bytes, status_line: bytes
) -> None:
    reply = raw_exchange(sim.port, request_bytes + b"GET /servers HTTP/1.1\r\n\r\n")
    assert reply.startswith(status_line)
    assert reply.count(b"HTTP/1.1 ") == 1
    assert b"\r\nConnection: close\r\n" in reply


def test_latency_delays_each_response(fleet: Fleet) -> None:
    with SimulatorServer(fleet, latency_ms=150) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for path in ["/servers", "/10.0.0.1"]:
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert time.perf_counter() - started >= 0.15
        conn.close()


def test_stop_closes_open_connections_and_is_idempotent(fleet: Fleet) -> None:
    server = SimulatorServer(fleet)
    server.start()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /servers HTTP/1.1\r\n\r\n")
        stream = sock.makefile("rb")
        assert read_response(stream)[0] == 200
        server.stop()
        assert stream.read() == b""
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port)).close()


def test_port_in_use_raises_oserror(sim: SimulatorServer, fleet: Fleet) -> None:
    with pytest.raises(OSError):
        SimulatorServer(fleet, port=sim.port).start()
    with pytest.raises(OSError):
        ReferenceServer("127.0.0.1", sim.port).start()


@needs_ipv6
def test_simulator_over_ipv6_uses_a_bracketed_url(fleet: Fleet) -> None:
    with SimulatorServer(fleet, host="::1") as server:
        assert server.url == f"http://[::1]:{server.port}"
        assert get(server.port, "/10.0.0.1", host="::1")[0] == 200


# --- ReferenceServer --------------------------------------------------------------------------


def check_reference_server(server: ReferenceServer, client_host: str) -> None:
    status, servers = get(server.port, "/servers", host=client_host)
    assert (status, servers) == (200, [f"10.58.1.{n}" for n in range(1, 151)])
    conn = http.client.HTTPConnection(client_host, server.port)
    conn.request("GET", "/10.58.1.7")
    response = conn.getresponse()
    assert response.version == 10
    assert response.will_close
    json.loads(response.read())
    conn.close()
    reply = raw_exchange(server.port, b"GET /10.58.1.7 HTTP/1.1\r\n\r\n", host=client_host)
    assert reply.startswith(b"HTTP/1.0 200 ")
    samples = [get(server.port, "/10.58.1.7", host=client_host)[1] for _ in range(20)]
    for sample in samples:
        assert isinstance(sample, dict)
        assert sample["service"] == Fleet.reference().instances["10.58.1.7"].service
        for key in ("cpu", "memory"):
            assert sample[key].endswith("%")
            assert 0 <= int(sample[key][:-1]) <= 100
    assert len({json.dumps(sample) for sample in samples}) > 1
    assert get(server.port, "/10.58.1.151", host=client_host) == (400, INVALID_IP)
    assert get(server.port, "/servers/", host=client_host) == (400, INVALID_IP)
    assert server.request_paths["/10.58.1.7"] == 22


@needs_ipv6
def test_reference_server_over_ipv6_by_default() -> None:
    with ReferenceServer(port=0) as server:
        assert server.url == f"http://[::1]:{server.port}"
        check_reference_server(server, "::1")


def test_reference_server_over_ipv4() -> None:
    with ReferenceServer("127.0.0.1", port=0) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        check_reference_server(server, "127.0.0.1")


def test_reference_server_stays_quiet_when_a_client_resets(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with ReferenceServer("127.0.0.1", port=0) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(b"GET /servers HTTP/1.0\r\n\r\n")
        sock.close()
        assert get(server.port, "/10.58.1.1")[0] == 200
    assert capfd.readouterr().err == ""


def test_reference_server_stop_is_idempotent() -> None:
    server = ReferenceServer("127.0.0.1", port=0)
    server.stop()
    server.start()
    server.stop()
    server.stop()


# --- serve ------------------------------------------------------------------------------------


def test_serve_reports_port_in_use(sim: SimulatorServer) -> None:
    out = io.StringIO()
    with pytest.raises(OSError):
        serve(
            host="127.0.0.1",
            port=sim.port,
            fleet_size=10,
            seed=1,
            reference=False,
            latency_ms=0.0,
            out=out,
        )
    assert out.getvalue() == ""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery to a child is POSIX-only")
def test_serve_announces_the_url_and_stops_on_ctrl_c() -> None:
    package_root = Path(cli_devops.__file__).resolve().parent.parent
    code = (
        "import sys; from cli_devops.simulator import serve\ntry:\n    "
        "serve(host='127.0.0.1', port=0, fleet_size=12, seed=42, reference=False, "
        "latency_ms=0.0, out=sys.stdout)\nexcept KeyboardInterrupt:\n    print('stopped')"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(package_root)},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    prefix = "CPX simulator listening on http://127.0.0.1:"
    assert line.startswith(prefix)
    assert line.endswith(" (12 instances, seed 42); press Ctrl+C to stop\n")
    port = int(line[len(prefix) :].split(" ")[0])
    status, servers = get(port, "/servers")
    assert status == 200
    assert servers == list(Fleet.generate(12, seed=42).instances)
    child.send_signal(signal.SIGINT)
    assert child.stdout.read() == "stopped\n"
    assert child.wait() == 0
