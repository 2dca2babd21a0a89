"""`watch --alertmanager` against a real Alertmanager (the Debian package
`prometheus-alertmanager`, which `make check` installs): the alert arrives firing with the
shipped rules' name and labels and is later resolved, both read back through Alertmanager's
own API; and the alerts' names and severities are those of deploy/prometheus/alerts.yml."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from cli_devops.simulator import SimulatorServer
from cli_devops.watch.alertmanager import alert
from cli_devops.watch.events import RECOVERY_OF, Event

from .scraping import free_port, terminate
from .watching import Watch, flapping_fleet, start_flap, wait_until

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"


class RunningAlertmanager(NamedTuple):
    url: str
    log: Path


def alertmanager_binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        "Alertmanager is not installed: these tests need the Debian package "
        "`prometheus-alertmanager` (make check installs it)",
        pytrace=False,
    )


@contextlib.contextmanager
def running_alertmanager(directory: Path) -> Iterator[RunningAlertmanager]:
    """A real Alertmanager on a free loopback port (it cannot take port 0), clustering off,
    its storage in `directory`; ready when this yields."""
    config = directory / "alertmanager.yml"
    config.write_text(
        'route:\n  receiver: "null"\n  group_wait: 1s\n  group_interval: 1s\n'
        'receivers:\n  - name: "null"\n'
    )
    port = free_port()
    log = directory / "alertmanager.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                alertmanager_binary(),
                f"--config.file={config}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                assert process.poll() is None, log.read_text()
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as answer:
                        return bool(answer.status == 200)
                except (urllib.error.URLError, OSError):
                    return False

            wait_until(ready, timeout=60)
            yield RunningAlertmanager(url, log)
        finally:
            terminate(process)  # type: ignore[arg-type]


def alerts(manager: RunningAlertmanager) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{manager.url}/api/v2/alerts", timeout=10) as answer:
        found: list[dict[str, Any]] = json.loads(answer.read())
    return found


def named(found: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [a for a in found if a["labels"]["alertname"] == name]


@pytest.mark.system
@pytest.mark.slow
def test_alerts_arrive_firing_with_the_rules_labels_and_are_later_resolved(tmp_path):
    server = SimulatorServer(flapping_fleet(), "127.0.0.1", 0)
    url = server.start()
    try:
        with running_alertmanager(tmp_path) as manager:
            watch = Watch("--cp-url", url, "watch", "--interval", "0.2",
                          "--alertmanager", manager.url + "/")  # fmt: skip
            start_flap(server, down=4.0)
            firing: list[dict[str, Any]] = []

            def arrived() -> bool:
                firing[:] = alerts(manager)
                return len(firing) == 2

            wait_until(arrived)
            service = named(firing, "CpxServiceUnderReplicated")[0]
            assert service["labels"] == {
                "alertname": "CpxServiceUnderReplicated", "severity": "critical", "job": "cpx",
                "cpx_service": "Pay",
            }  # fmt: skip
            assert service["status"]["state"] == "active"
            ends = datetime.fromisoformat(service["endsAt"].replace("Z", "+00:00"))
            assert ends > datetime.now(UTC) + timedelta(minutes=2)
            instance = named(firing, "CpxInstanceUnhealthy")[0]
            assert instance["labels"] == {
                "alertname": "CpxInstanceUnhealthy", "severity": "warning", "job": "cpx",
                "cpx_service": "Pay", "ip": "10.2.0.2",
            }  # fmt: skip
            assert "fewer than 2 healthy" in service["annotations"]["summary"]
            wait_until(lambda: alerts(manager) == [])  # resolved: endsAt now, so not listed
            kinds = [event["kind"] for event in watch.events(4)]
            status, stderr = watch.stop()
    finally:
        server.stop()
    assert kinds == ["instance_unhealthy", "service_under_replicated", "instance_recovered",
                     "service_recovered"]  # fmt: skip
    assert status == 0
    assert stderr.endswith("; 4 deliveries, 0 failed, 0 cut short\n"), stderr


def test_alert_names_and_severities_are_those_of_the_shipped_rules():
    rules = {
        rule["alert"]: (rule["labels"]["severity"], rule["annotations"]["runbook_url"])
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cases = [
        (("service", "Pay"), {"healthy": 1, "min_healthy": 2, "instances": 2}),
        (
            ("instance", "10.0.0.1"),
            {"instance": "10.0.0.1", "cpu": 95, "memory": 1, "status": "Unhealthy"},
        ),
        (("source",), {"source": "http://cpx", "error": "refused"}),
    ]
    kinds = ["service_under_replicated", "instance_unhealthy", "source_unreachable"]
    for (key, details), kind in zip(cases, kinds, strict=True):
        firing = alert(Event(now, kind, "Pay", key, now, details), now)
        labels = firing["labels"]
        assert isinstance(labels, dict)
        annotations = firing["annotations"]
        assert isinstance(annotations, dict)
        assert rules[labels["alertname"]] == (labels["severity"], annotations["runbook_url"])
        assert firing["endsAt"] > firing["startsAt"]  # type: ignore[operator]
        recovered = alert(Event(now, RECOVERY_OF[kind], "Pay", key, now, details), now)
        assert recovered["endsAt"] == "2026-01-01T00:00:00.000Z"


def test_make_check_installs_alertmanager():
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    check_recipe = makefile.split("\ncheck:", 1)[1].split("\n", 1)[0]
    assert "alertmanager" in check_recipe.split()
    assert "apt-get install -y --no-install-recommends prometheus-alertmanager" in makefile


def test_firing_alerts_are_re_sent_every_minute_with_ends_ahead():
    from cli_devops.environment import Environment
    from cli_devops.watch.alertmanager import Alertmanager
    from cli_devops.watch.deliveries import Deliveries, Receivers
    from cli_devops.watch.posting import Target

    from .watching import Receiver

    receiver = Receiver()
    now = datetime.now(UTC)
    firing = Event(now, "service_under_replicated", "Pay", ("service", "Pay"), now,
                   {"healthy": 1, "min_healthy": 2, "instances": 2})  # fmt: skip
    manager = Alertmanager(Target(receiver.url.rsplit("/", 1)[0], "--alertmanager"))

    async def run() -> None:
        async with Deliveries(Environment(), Receivers(alertmanager=manager)) as deliveries:
            deliveries.tick([firing], now, 100.0)  # the first poll: the minute starts
            deliveries.tick([firing], now, 159.0)
            deliveries.tick([firing], now + timedelta(seconds=60), 160.0)  # a minute later

    try:
        asyncio.run(run())
    finally:
        receiver.close()
    assert receiver.paths == ["/api/v2/alerts"]
    headers, body, _ = receiver.received[0]
    assert headers["Content-Type"] == "application/json"
    [sent] = json.loads(body)
    assert sent["labels"]["alertname"] == "CpxServiceUnderReplicated"
    ends = datetime.fromisoformat(sent["endsAt"].replace("Z", "+00:00"))
    assert ends - now >= timedelta(minutes=4)
