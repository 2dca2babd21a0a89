"""`wait` and `watch` read the fleet as every other command does: through a context of the
config file (with its thresholds), and from Prometheus with `--prometheus-url`."""

from __future__ import annotations

import json

import pytest

from .test_prometheus_source import scraped  # noqa: F401 -- the fixture: Prometheus scraping
from .watching import Watch


def test_wait_uses_the_context_and_its_thresholds(cli, sim, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[contexts.a]\ncp-url = "{sim.url}"\ncpu-threshold = 96\n')
    # UserService: 10%, 90% and 91% CPU; healthy under 96 (the context), not under 90
    args = ("--config", str(config), "--context", "a", "wait", "--service", "UserService",
            "--min-healthy", "3", "--interval", "0.1", "-o", "json")  # fmt: skip
    ready = cli(*args, "--max-wait", "5")
    assert ready.exit_code == 0, ready.stderr
    assert json.loads(ready.stdout)["healthy"] == 3
    strict = cli(*args, "--max-wait", "0.3", "--cpu-threshold", "90")
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["healthy"] == 2


def test_watch_uses_the_context(sim, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[contexts.a]\ncp-url = "{sim.url}"\n')
    watch = Watch("--config", str(config), "--context", "a", "watch", "--service", "GeoService")
    event = watch.next_event()
    status, _ = watch.stop()
    assert event is not None and event["kind"] == "instance_unhealthy"
    assert event["instance"] == "10.0.0.9" and event["memory"] == 91
    assert status == 0


@pytest.mark.slow
@pytest.mark.system
def test_wait_and_watch_read_the_fleet_from_prometheus(scraped, cli):  # noqa: F811
    url = scraped.prometheus.url
    # OddService: 4 instances, 2 healthy (50.5/33.3 and 12.3/90)
    ready = cli("--prometheus-url", url, "wait", "--service", "OddService", "-o", "json")
    assert ready.exit_code == 0, ready.stderr
    assert json.loads(ready.stdout)["instances"] == 4
    watch = Watch("--prometheus-url", url, "watch", "--service", "OddService", "--min-healthy", "3")
    events = [watch.next_event() for _ in range(3)]
    status, _ = watch.stop()
    assert [e["kind"] for e in events if e] == ["instance_unhealthy", "instance_unhealthy",
                                               "service_under_replicated"]  # fmt: skip
    assert events[2] is not None and events[2]["healthy"] == 2
    assert status == 0
