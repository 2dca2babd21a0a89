"""The shipped Prometheus files checked by promtool, and a real Prometheus scraping the exporter.

These tests need the `prometheus` Debian package (it brings `promtool`); they fail, not skip,
without it, so a green run always means the deploy files were checked. `.ci/run` installs it.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from cli_devops.client import ClientSettings
from cli_devops.exporter import Exporter, Shard, shard_of

from .scraping import get, query, running_prometheus, samples, tool

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "cpx-fleet.json"
ALERTS = (
    "CpxServiceUnderReplicated",
    "CpxInstanceUnhealthy",
    "CpxInstanceUnreadable",
    "CpxApiDown",
    "CpxExporterScrapeFailing",
    "CpxExporterMissing",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_check_config():
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_promtool_check_rules():
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 11 rules found" in done.stdout


def test_promtool_test_rules():
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing():
    tests = (PROMETHEUS_DIR / "alerts_test.yml").read_text()
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text()
    assert sorted(re.findall(r"^\s+- alert: (\w+)$", rules, re.MULTILINE)) == sorted(ALERTS)
    for alert in ALERTS:
        blocks = re.findall(
            rf"alertname: {alert}\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time|\n\n|\Z)", tests, re.S
        )
        assert any(block.strip().startswith("[]") for block in blocks), f"{alert} never silent"
        assert any("exp_labels" in block for block in blocks), f"{alert} never fires"


def test_deploy_files_name_only_metrics_the_exporter_serves(sim):
    with Exporter(ClientSettings(sim.url)) as running:
        served = {name for name, _ in samples(get(running.url).text)}
    recorded = set(re.findall(r"record: (\S+)", (PROMETHEUS_DIR / "alerts.yml").read_text()))
    for path in (PROMETHEUS_DIR / "alerts.yml", PROMETHEUS_DIR / "alerts_test.yml", DASHBOARD):
        named = set(re.findall(r"\bcpx_[a-z_]+\b", path.read_text())) - {"cpx_service"}
        named -= {name.split(":")[1] for name in recorded}  # "cpx_service:<metric>:sum"
        assert named <= served, (path.name, named - served)
    names = set(re.findall(r"\bcpx_[a-z_]+", (PROMETHEUS_DIR / "alerts.yml").read_text()))
    assert {"cpx_up", "cpx_service_healthy_instances", "cpx_instance_healthy"} <= names


def vector(base: str, promql: str) -> dict[str, float]:
    """An instant query whose series are told apart by cpx_service: {service: value}."""
    data = query(base, "/api/v1/query", query=promql)
    assert isinstance(data, dict)
    return {item["metric"]["cpx_service"]: float(item["value"][1]) for item in data["result"]}


def test_real_prometheus_scrapes_two_exporter_shards(sim, fleet, tmp_path):
    tool("promtool")
    with ExitStack() as stack:
        shards = [
            stack.enter_context(Exporter(ClientSettings(sim.url), shard=Shard(index, 2)))
            for index in range(2)
        ]
        prometheus = stack.enter_context(
            running_prometheus(
                tmp_path,
                [urllib.parse.urlsplit(s.url).netloc for s in shards],
                rule_files=[PROMETHEUS_DIR / "alerts.yml"],
            )
        )
        base = prometheus.url

        healthy = {"UserService": 2.0, "AuthService": 1.0, "MLService": 0.0, "GeoService": 2.0}
        total = {"UserService": 3.0, "AuthService": 2.0, "MLService": 2.0, "GeoService": 3.0}
        seen: dict[str, object] = {}

        def arrived() -> bool:
            seen["sum"] = vector(base, "sum by (cpx_service) (cpx_service_healthy_instances)")
            seen["recorded"] = vector(base, "cpx_service:cpx_service_healthy_instances:sum")
            seen["instances"] = vector(base, "cpx_service:cpx_service_instances:sum")
            alerts = query(base, "/api/v1/alerts")
            assert isinstance(alerts, dict)
            seen["pending"] = sorted(
                alert["labels"]["cpx_service"]
                for alert in alerts["alerts"]
                if alert["labels"]["alertname"] == "CpxServiceUnderReplicated"
            )
            return (
                seen["sum"] == healthy
                and seen["recorded"] == healthy
                and seen["instances"] == total
                and seen["pending"] == ["AuthService", "MLService"]
            )

        prometheus.poll(arrived, seen)

        per_shard = query(base, "/api/v1/query", query="cpx_service_healthy_instances")
        assert isinstance(per_shard, dict)
        by_target = {
            (item["metric"]["instance"], item["metric"]["cpx_service"]): float(item["value"][1])
            for item in per_shard["result"]
        }
        expected: dict[tuple[str, str], float] = {}
        for ip, instance in fleet.instances.items():
            target = urllib.parse.urlsplit(shards[shard_of(ip, 2)].url).netloc
            key = (target, instance.service)
            ok = instance.cpu <= 90 and instance.memory <= 90
            expected[key] = expected.get(key, 0.0) + ok
        assert by_target == expected

        rules = query(base, "/api/v1/rules")
        assert isinstance(rules, dict)
        loaded = {rule["name"] for group in rules["groups"] for rule in group["rules"]}
        assert set(ALERTS) <= loaded
        assert all(
            rule["health"] == "ok" for group in rules["groups"] for rule in group["rules"]
        ), rules

        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                promql = target["expr"].replace("$job", "cpx").replace("$service", ".*")
                data = query(base, "/api/v1/query", query=promql)
                assert isinstance(data, dict)
                assert data["result"], (panel["title"], promql)


def test_the_test_command_installs_prometheus_and_the_readme_says_so():
    makefile = (ROOT / "Makefile").read_text()
    check_recipe = makefile.split("\ncheck:", 1)[1]
    assert check_recipe.split("\n", 1)[0].split()[:2] == ["$(VENV)/.installed", "prometheus"]
    assert "if ! command -v promtool" in makefile
    assert "apt-get install -y --no-install-recommends prometheus" in makefile
    readme = (ROOT / "README.md").read_text()
    assert "installs the Debian package `prometheus` when `promtool`" in readme
    guide = (ROOT / "docs" / "prometheus.md").read_text().split("## Run with Prometheus", 1)[1]
    for path in ("prometheus.yml", "alerts.yml", "alerts_test.yml", "cpx-fleet.json"):
        assert path in guide
