"""The container image, built and run with no registry: a Debian base made locally with
debootstrap (deploy/container/local-base.sh, cached under build/), the Containerfile built on it
with podman, run read-only, non-root and without capabilities, scraped from the host, checked
by its HEALTHCHECK, and stopped with SIGTERM (exit 0)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_devops import __version__
from cli_devops.simulator import Fleet, SimulatorServer

from .scraping import expected_samples, get, log_events, samples, wait_until, without_duration

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/cli-devops-base:bookworm"
# runc, because crun refuses hybrid cgroups; cgroupfs and a file for events, because systemd
# need not be PID 1 where the tests run.
PODMAN = ["--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
# slirp4netns lets the container reach the host's loopback (the simulator) as 10.0.2.2.
HOST_LOOPBACK = "10.0.2.2"


def podman(
    *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [needed("podman"), *PODMAN, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args[:2])} failed:\n{done.stderr[-3000:]}", pytrace=False)
    return done


def needed(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(
            f"{program} is not installed: `make check` installs podman, runc, slirp4netns and "
            "debootstrap (Debian packages) for the container test",
            pytrace=False,
        )
    return path


def below_host(limit: int, wanted: int) -> int:
    """A ulimit the container may have: `wanted`, or less where the host allows less."""
    soft, _ = resource.getrlimit(limit)
    return wanted if soft == resource.RLIM_INFINITY else min(wanted, soft)


def run_options() -> list[str]:
    """Limits within the host's (podman's default open-file limit can exceed the host's hard
    limit, which runc then refuses), and no healthcheck timer (it needs systemd)."""
    nofile = below_host(resource.RLIMIT_NOFILE, 1024)
    nproc = below_host(resource.RLIMIT_NPROC, 256)
    return [
        "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}",
        "--health-interval", "disable",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The image built from the Containerfile on the locally made base, removed afterwards
    (its layers stay in podman's cache, so a rebuild of unchanged sources is quick)."""
    for program in ("runc", "slirp4netns", "debootstrap"):
        needed(program)
    if os.geteuid() != 0:
        pytest.fail("the container test runs as root (debootstrap, chroot)", pytrace=False)
    base = subprocess.run(
        ["sh", "deploy/container/local-base.sh", BASE_IMAGE, "build/container"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert base.returncode == 0, base.stderr[-3000:]
    tag = f"localhost/cli-devops-test:{uuid.uuid4().hex[:12]}"
    build_args = [f"BASE_IMAGE={BASE_IMAGE}", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt"]
    if os.environ.get("PIP_INDEX_URL"):
        build_args.append(f"PIP_INDEX_URL={os.environ['PIP_INDEX_URL']}")
    podman(
        "build", "--pull=never", "--format", "docker", "--network", "host",
        *(arg for pair in build_args for arg in ("--build-arg", pair)),
        "-t", tag, "-f", str(ROOT / "Containerfile"), str(ROOT),
    )  # fmt: skip
    yield tag
    podman("rmi", "--force", tag, check=False)


def test_the_entrypoint_is_the_cli(image):
    done = podman("run", "--rm", "--read-only", *run_options(), image, "--version")
    assert done.stdout == f"cli_devops, version {__version__}\n"


def test_the_image_declares_a_numeric_user_and_a_healthcheck(image):
    (config,) = json.loads(podman("image", "inspect", image).stdout)
    user = config["Config"]["User"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit(), user
    assert config["Config"]["Entrypoint"] == ["cli_devops"]
    assert config["Config"]["ExposedPorts"] == {"8095/tcp": {}}
    check = config["Healthcheck"]["Test"]  # podman shows it beside Config
    assert check[0] == "CMD" and "curl" not in " ".join(check)


@pytest.fixture
def simulator(fleet: Fleet) -> Iterator[SimulatorServer]:
    server = SimulatorServer(fleet, "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def test_the_exporter_runs_hardened_is_scraped_from_the_host_and_stops_cleanly(
    image, simulator, fleet
):
    name = f"cli-devops-test-{uuid.uuid4().hex[:12]}"
    podman(
        "run", "--detach", "--name", name, *run_options(),
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--network", "slirp4netns:allow_host_loopback=true", "--publish", "127.0.0.1::8095",
        "--env", f"CPX_URL=http://{HOST_LOOPBACK}:{simulator.port}",
        image,
    )  # fmt: skip
    try:
        port = podman("port", name, "8095/tcp").stdout.strip().rpartition(":")[2]
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return get(url, "/-/healthy").status == 200
            except OSError:
                return False

        wait_until(healthy, "the exporter in the container answering")
        found = samples(get(url).text)
        assert found["cpx_up", ()] == 1
        assert without_duration(found) == expected_samples(fleet)
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        assert podman("exec", name, "id", "-u").stdout.strip() != "0"
        podman("stop", "--time", "10", name)  # SIGTERM; SIGKILL after 10 s would be exit 137
        (state,) = json.loads(podman("inspect", name).stdout)
        assert state["State"]["ExitCode"] == 0
        logs = podman("logs", name)
    finally:
        podman("rm", "--force", name, check=False)
    assert logs.stdout.startswith("Serving CPX metrics on port 8095 of every IPv4 interface")
    assert [event["msg"] for event in log_events(logs.stderr)] == ["listening", "stopping"]
