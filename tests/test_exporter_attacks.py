"""The exporter under attack: hostile figures, scrapers that try to poison each other's scrapes,
a limit that must not collapse across scrapes, huge fleets, HEAD, gzip q=0, and stop signals
mid-scrape. A real exporter against the hostile stand-in over loopback."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from cli_devops.client import ClientSettings
from cli_devops.exporter import Exporter, accepts_gzip

from .conftest import hermetic_environ, stop_process
from .hostile import HostileCpx, Reply, hang, healthy, ips, slow
from .scraping import get, messages, samples, wait_until


def scrape(
    url: str, timeout: str | None = None
) -> tuple[float, dict[tuple[str, tuple[tuple[str, str], ...]], float], int]:
    headers = {} if timeout is None else {"X-Prometheus-Scrape-Timeout-Seconds": timeout}
    started = time.monotonic()
    answer = get(url, headers=headers)
    assert answer.status == 200, answer.body[:300]
    return time.monotonic() - started, samples(answer.text), len(answer.body)


def read_count(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> int:
    return sum(
        1
        for (name, _), value in found.items()
        if name == "cpx_instance_scrape_success" and value == 1
    )


@pytest.fixture
def exporter_for() -> Iterator[object]:
    running: list[Exporter] = []

    def start(url: str, **settings: object) -> Exporter:
        exporter = Exporter(ClientSettings(url, **settings))  # type: ignore[arg-type]
        exporter.start()
        running.append(exporter)
        return exporter

    yield start
    for exporter in running:
        exporter.stop()


def test_a_400_digit_figure_is_one_failed_instance_not_a_500(exporter_for):
    with HostileCpx(ips(3)) as api:
        api.routes["/10.0.0.1"] = Reply(
            body=b'{"cpu": 1' + b"0" * 400 + b', "memory": 1, "service": "S"}'
        )
        api.routes["/10.0.0.2"] = Reply(body=b'{"cpu": 1e999, "memory": 1, "service": "S"}')
        _, found, _ = scrape(exporter_for(api.url).url)
    assert found["cpx_up", ()] == 1
    assert found["cpx_instance_scrape_success", (("ip", "10.0.0.1"),)] == 0
    assert found["cpx_instance_scrape_success", (("ip", "10.0.0.2"),)] == 0
    assert found["cpx_instance_scrape_success", (("ip", "10.0.0.3"),)] == 1


def test_a_redirect_carrying_credentials_is_followed_without_them(exporter_for):
    with HostileCpx(ips(3)) as api:
        port = api.url.rsplit(":", 1)[1]
        api.routes["/servers"] = Reply(
            status=302, body=b"", headers=(("Location", f"http://u:p@127.0.0.1:{port}/list"),)
        )
        api.routes["/list"] = Reply(body=json.dumps(ips(3)).encode())
        _, found, _ = scrape(exporter_for(api.url, token="secret").url)
    assert found["cpx_up", ()] == 1
    assert read_count(found) == 3


def test_a_scraper_with_a_tiny_timeout_cannot_make_other_scrapes_report_cpx_down(exporter_for):
    with HostileCpx(ips(20), slow(0.05)) as api:
        exporter = exporter_for(api.url)
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                get(exporter.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.001"})

        attackers = [threading.Thread(target=hammer) for _ in range(2)]
        for thread in attackers:
            thread.start()
        try:
            results = [scrape(exporter.url, "10")[1] for _ in range(10)]
        finally:
            stop.set()
            for thread in attackers:
                thread.join()
    assert [found["cpx_up", ()] for found in results] == [1] * 10
    assert [read_count(found) for found in results] == [20] * 10


@pytest.mark.slow
def test_a_scraper_with_a_huge_timeout_cannot_make_others_wait(exporter_for):
    hung = {f"/{ip}" for ip in ips(20)[:5]}

    def reply(path: str) -> Reply:
        return Reply("hang") if path in hung else healthy(path)

    with HostileCpx(ips(20), reply) as api:
        exporter = exporter_for(api.url, timeout=600)

        def patient_scrape() -> None:
            # abandoned when the exporter stops at the end of the test
            with contextlib.suppress(ConnectionError, http.client.HTTPException):
                get(exporter.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "300"})

        patient = threading.Thread(target=patient_scrape)
        patient.daemon = True
        patient.start()
        wait_until(lambda: exporter.reader.waiting == 1, "the 300 s scrape reading")
        timings = [scrape(exporter.url, "3") for _ in range(3)]
    for seconds, found, _ in timings:
        assert found["cpx_up", ()] == 1
        assert read_count(found) == 15
        assert seconds < 3 * 3


@pytest.mark.slow
def test_the_limit_learned_across_scrapes_does_not_collapse_on_deadline_cuts(exporter_for):
    # A 1 s API and a 2 s scrape timeout (1.5 s to read): most requests of every scrape are cut
    # by its deadline. Counted as congestion they shrank the limit scrape after scrape (instances
    # read went 8, 150, 79, 18, 8, 5, 2, 2).
    with HostileCpx(ips(150), slow(1.0)) as api:
        exporter = exporter_for(api.url)
        counts = [read_count(scrape(exporter.url, "2")[1]) for _ in range(6)]
        print("instances read per scrape:", counts)
    assert min(counts[1:]) >= 16, counts
    assert counts[-1] >= counts[1] // 2, counts


def test_deadline_caps_every_scrape(exporter_for):
    with HostileCpx(ips(10), hang) as api:
        exporter = exporter_for(api.url, deadline=1.0)
        seconds, found, _ = scrape(exporter.url)  # no header: 9.5 s without the cap
    assert found["cpx_up", ()] == 1
    assert read_count(found) == 0
    assert seconds < 1 + 4


@pytest.mark.slow
def test_a_huge_fleet_scrape_answers_within_its_timeout_with_a_small_body(exporter_for):
    with HostileCpx(ips(200_000), hang) as api:
        exporter = exporter_for(api.url)
        seconds, found, size = scrape(exporter.url, "3")
    assert found["cpx_up", ()] == 1
    assert found["cpx_scrape_unrequested_instances", ()] > 150_000
    assert size < 1024 * 1024
    assert seconds < 3 * 3


def raw_request(
    url: str, method: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.request(method, "/metrics", headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_head_is_answered_like_get_without_a_body(exporter_for):
    with HostileCpx(ips(3)) as api:
        exporter = exporter_for(api.url)
        status, headers, body = raw_request(exporter.url, "HEAD", {})
        _, got_headers, got_body = raw_request(exporter.url, "GET", {})
    assert status == 200
    assert body == b""
    assert headers["content-type"] == got_headers["content-type"]
    assert abs(int(headers["content-length"]) - len(got_body)) < 64  # durations differ


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [("gzip", True), ("gzip;q=0", False), ("gzip; q=0.0, identity", False), ("*", True),
     ("*;q=0", False), ("identity", False), ("gzip;q=0.5", True), ("deflate, gzip;q=0, *", False)],
)  # fmt: skip
def test_gzip_only_when_accepted_with_a_q_value_above_0(exporter_for, header, gzipped):
    assert accepts_gzip(header) is gzipped
    with HostileCpx(ips(3)) as api:
        _, headers, _ = raw_request(exporter_for(api.url).url, "GET", {"Accept-Encoding": header})
    assert (headers.get("content-encoding") == "gzip") is gzipped


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_mid_scrape_is_a_clean_stop_without_a_500(sig):
    with HostileCpx(ips(5), hang) as api:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli_devops", "--cp-url", api.url, "exporter",
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
        )  # fmt: skip
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split(" on ", 1)[1].split("/metrics", 1)[0]
            answers: list[object] = []

            def scrape_once() -> None:
                try:
                    answers.append(
                        get(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "60"}).status
                    )
                except (ConnectionError, http.client.HTTPException) as err:
                    answers.append(type(err).__name__)

            scraper = threading.Thread(target=scrape_once)
            scraper.start()
            wait_until(lambda: api.request_count() >= 6, "the scrape waiting on hung instances")
            _, err = stop_process(process, sig)
            scraper.join(30)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert messages(err) == ["listening", "stopping"]
    assert answers and answers[0] != 500, answers
