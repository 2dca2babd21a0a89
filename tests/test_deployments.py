"""The deployments checked by the tools made for them: the Kubernetes manifests against the 1.30
schemas (kubernetes-validate, strictly) and the Prometheus Operator's required fields, the
systemd unit by `systemd-analyze`, the Alertmanager routes by `amtool`; and every alert routable
and linked to its runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
UNIT = ROOT / "deploy" / "systemd" / "cpx-exporter.service"
RUNBOOK = ROOT / "docs" / "runbook.md"
RECEIVERS = {"critical": "on-call-pager", "warning": "team-tickets"}


def manifest(name: str) -> dict[str, Any]:
    document = yaml.safe_load((KUBERNETES / name).read_text())
    assert isinstance(document, dict)
    return document


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def needed(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"{program} is not installed: `make check` installs the Debian package {package}",
            pytrace=False,
        )
    return path


@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml"])
def test_kubernetes_manifests_are_valid_for_1_30_strictly(name):
    assert kubernetes_validate.validate(manifest(name), "1.30.0", strict=True) == "1.30"


def test_an_unknown_field_fails_strict_validation():
    """The check above can fail: a misspelt field is refused."""
    deployment = manifest("deployment.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30.0", strict=True)


def test_the_deployment_runs_hardened_with_probes_and_bounds():
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/-/healthy", "port": "metrics"}
    env = {item["name"]: item for item in container["env"]}
    assert env["CPX_URL"]["valueFrom"]["secretKeyRef"]["name"] == "cpx-exporter"
    assert container["ports"] == [{"name": "metrics", "containerPort": 8095, "protocol": "TCP"}]


def test_service_and_service_monitor_find_the_pods_and_name_the_alerts_job():
    deployment, service = manifest("deployment.yaml"), manifest("service.yaml")
    monitor = manifest("servicemonitor.yaml")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= port_names
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    selected = set(re.findall(r'up\{job="(\w+)"\}', ALERTS.read_text()))
    assert selected == {job}


def test_service_monitor_has_the_fields_its_crd_requires():
    monitor = manifest("servicemonitor.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["name"]
    assert isinstance(monitor["spec"]["selector"], dict)
    assert monitor["spec"]["endpoints"]
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint.keys() <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert re.fullmatch(r"\d+s", endpoint["interval"])
        assert re.fullmatch(r"\d+s", endpoint["scrapeTimeout"])


def test_prometheus_rule_has_the_fields_its_crd_requires_and_equals_alerts_yml():
    rule = manifest("prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["name"]
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"}
    for group in rule["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for each in group["rules"]:
            assert ("alert" in each) != ("record" in each)
            assert isinstance(each["expr"], str) and each["expr"]
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_kustomization_lists_every_manifest():
    listed = manifest("kustomization.yaml")["resources"]
    present = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == present


def runbook_sections() -> dict[str, str]:
    """GitHub's anchor of each `## ` heading -> that section's text."""
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)[1:]:
        heading, _, body = block.partition("\n")
        anchor = re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")
        sections[anchor] = heading + "\n" + body
    return sections


def test_every_alert_has_a_routable_severity_and_a_runbook_section():
    sections = runbook_sections()
    rules = alert_rules()
    assert len(rules) == 6
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in RECEIVERS, name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/runbook.md"
        section = sections[anchor]
        assert section.startswith(f"{name}\n")
        assert f"Severity: {rule['labels']['severity']}." in section
        assert "\nCheck:\n" in section and "\nDo:\n" in section
    assert len(sections) == len(rules)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [needed("amtool", "prometheus-alertmanager"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.system
def test_amtool_accepts_the_alertmanager_config():
    done = amtool("check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert " - 2 receivers" in done.stdout


@pytest.mark.system
def test_critical_and_warning_alerts_reach_different_receivers():
    assert len(set(RECEIVERS.values())) == 2
    for rule in alert_rules():
        labels = [f"alertname={rule['alert']}", f"severity={rule['labels']['severity']}"]
        expected = RECEIVERS[rule["labels"]["severity"]]
        done = amtool(
            "config", "routes", "test", f"--config.file={ALERTMANAGER}",
            f"--verify.receivers={expected}", *labels,
        )  # fmt: skip
        assert done.returncode == 0, (rule["alert"], done.stdout, done.stderr)
        assert done.stdout.strip() == expected
    wrong = amtool(
        "config", "routes", "test", f"--config.file={ALERTMANAGER}",
        "--verify.receivers=on-call-pager", "severity=warning",
    )  # fmt: skip
    assert wrong.returncode != 0


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_is_hardened():
    unit = unit_settings()
    assert unit["DynamicUser"] == ["yes"] or unit.get("User", ["root"]) != ["root"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
    }.items():
        assert unit[key] == [value], key
    assert unit["CapabilityBoundingSet"] == [""]


@pytest.mark.system
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path):
    """Verified in a root of its own: the machine's unit files, the unit, and a stand-in for
    the program it starts (which verify checks exists)."""
    analyze = needed("systemd-analyze", "systemd")
    units = Path("/usr/lib/systemd/system")
    assert (units / "multi-user.target").exists(), "systemd's unit files are missing"
    shutil.copytree(units, tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system" / UNIT.name)
    program = Path(unit_settings()["ExecStart"][0].split()[0])
    stand_in = tmp_path / program.relative_to("/")
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    done = subprocess.run(
        [analyze, "verify", f"--root={tmp_path}", UNIT.name],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    stand_in.unlink()  # and the check can fail
    missing = subprocess.run(
        [analyze, "verify", f"--root={tmp_path}", UNIT.name],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "is not executable" in missing.stderr


@pytest.mark.system
def test_systemd_analyze_security_rates_the_unit_ok():
    done = subprocess.run(
        [needed("systemd-analyze", "systemd"), "security", "--offline=yes", "--no-pager",
         str(UNIT)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr
    assert float(found.group(1)) <= 4.9
    assert found.group(2) == "OK"


def test_make_check_installs_what_these_tests_need_and_the_readme_shows_the_commands():
    makefile = (ROOT / "Makefile").read_text()
    check = makefile.split("\ncheck:", 1)[1].split("\n", 1)[0].split()
    assert {"deploy-tools", "container-tools"} <= set(check)
    assert "--no-install-recommends \\\n\t\t\tprometheus-alertmanager systemd;" in makefile
    assert "podman runc slirp4netns uidmap debootstrap;" in makefile
    readme = (ROOT / "README.md").read_text()
    service = readme.split("## Run it as a service", 1)[1].split("\n## ", 1)[0]
    for command in (
        "podman build -t cli-devops .",
        "podman run --rm -p 8095:8095 -e CPX_URL=http://CPX-HOST:8081 cli-devops",
        "kubectl apply -k deploy/kubernetes/",
        "sudo install -m 0644 deploy/systemd/cpx-exporter.service /etc/systemd/system/",
    ):
        assert command in service
    assert "image:" in makefile and "image-local-base:" in makefile
