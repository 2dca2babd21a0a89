"""The chaos suite, part three: the token goes only where it should, TLS is verified and proxies
are honoured."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import pytest
import trustme

from cli_devops.client import (
    ClientSettings,
)
from cli_devops.run_config import RunConfig
from cli_devops.simulator import (
    Fault,
    SimulatorServer,
)

from .conftest import run_process
from .resilience_helpers import (
    TOKEN,
    assert_true_values,
    fleet_of,
    records_of,
)

# Auth and transport


def test_token_is_sent_as_bearer_and_required_by_the_api(cli, served, monkeypatch):
    fleet = fleet_of(5)
    server = served(fleet, token=TOKEN)
    result = cli("--cp-url", server.url, "--token", TOKEN, "services", "-o", "json")
    assert result.exit_code == 0
    assert len(records_of(result.stdout)) == 5
    assert server.auth_headers == {f"Bearer {TOKEN}": 6}
    missing = cli("--cp-url", server.url, "services")
    assert missing.exit_code == 3
    assert missing.stderr == (
        f"cli_devops: error: cannot read the CPX API at {server.url}/servers: HTTP 401. "
        "Check --token (or CPX_TOKEN).\n"
    )
    monkeypatch.setenv("CPX_TOKEN", TOKEN)
    assert cli("--cp-url", server.url, "services").exit_code == 0


@pytest.mark.slow
def test_token_never_appears_in_any_output_or_log(cli, served, monkeypatch):
    fleet = fleet_of(5)
    good = served(fleet, token=TOKEN)
    wrong = served(fleet, token="another-token")
    flaky = served(fleet, faults=lambda path, n: Fault.drop() if n == 1 else Fault.answer(418))
    runs = []
    for server in (good, wrong, flaky):
        for output in ("table", "json", "csv"):
            runs.append(cli("--debug", "--cp-url", server.url, "--token", TOKEN,
                            "services", "-o", output))  # fmt: skip
    runs.append(cli("--debug", "--cp-url", "http://127.0.0.1:1", "--token", TOKEN, "status"))
    runs.append(cli("--cp-url", good.url, "--token", TOKEN, "--strict", "services", "-o", "csv"))
    runs.append(cli("--token", TOKEN + " x", "services"))  # rejected value, not echoed
    runs.append(cli("--token", TOKEN, "--timeout", "0", "services"))
    monkeypatch.setenv("CPX_TOKEN", TOKEN)
    runs.append(cli("--debug", "--cp-url", wrong.url, "track", "X", "--count", "1"))
    assert {run.exit_code for run in runs} >= {0, 2, 3}
    assert "Traceback" in "".join(run.stderr for run in runs)  # --debug tracebacks were checked
    for run in runs:
        assert TOKEN not in run.stdout
        assert TOKEN not in run.stderr
    process = run_process("--debug", "--cp-url", wrong.url, "services",
                          env_extra={"CPX_TOKEN": TOKEN})  # fmt: skip
    assert process.exit_code == 3
    assert "Traceback" in process.stderr
    assert TOKEN not in process.stdout + process.stderr
    settings_repr = repr(ClientSettings(base_url=good.url, token=TOKEN))
    app_repr = repr(RunConfig(settings=ClientSettings(base_url=good.url, token=TOKEN)))
    assert TOKEN not in settings_repr + app_repr


def test_redirect_to_another_host_does_not_carry_the_token(cli, served):
    fleet = fleet_of(5)
    other = served(fleet)
    home = served(
        fleet,
        token=TOKEN,
        faults=lambda path, _: (
            None if path == "/servers" else Fault.redirect(other.url + path, 307)
        ),
    )
    result = cli("--debug", "--cp-url", home.url, "--token", TOKEN, "services", "-o", "json")
    assert result.exit_code == 0
    for record in records_of(result.stdout).values():
        assert_true_values(record, fleet)
    assert other.auth_headers == {}
    assert sum(other.request_paths.values()) == 5
    assert home.auth_headers == {f"Bearer {TOKEN}": 6}
    assert f"redirect leaves {home.url}: the token is not sent" in result.stderr


def test_redirect_within_the_same_origin_keeps_the_token(cli, served):
    fleet = fleet_of(5)

    def once_elsewhere(path: str, attempt: int) -> Fault | None:
        return Fault.redirect(path) if attempt == 1 else None

    server = served(fleet, token=TOKEN, faults=once_elsewhere)
    result = cli("--cp-url", server.url, "--token", TOKEN, "services", "-o", "json")
    assert result.exit_code == 0
    for record in records_of(result.stdout).values():
        assert_true_values(record, fleet)
    assert server.auth_headers == {f"Bearer {TOKEN}": 12}


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(tls_ca: trustme.CA, served: Callable[..., SimulatorServer]) -> SimulatorServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    return served(fleet_of(4), tls=context)


def test_https_needs_a_trusted_certificate(cli, tls_server, tls_ca, tmp_path):
    assert tls_server.url.startswith("https://127.0.0.1:")
    untrusted = cli("--cp-url", tls_server.url, "services")
    assert untrusted.exit_code == 3
    assert untrusted.stderr == (
        f"cli_devops: error: cannot read the CPX API at {tls_server.url}/servers: "
        "TLS certificate not trusted. Check --ca-cert (or --insecure for testing).\n"
    )
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    trusted = cli("--cp-url", tls_server.url, "--ca-cert", str(ca_file), "services", "-o", "json")
    assert trusted.exit_code == 0, trusted.stderr
    assert len(records_of(trusted.stdout)) == 4
    assert trusted.stderr == ""
    insecure = cli("--cp-url", tls_server.url, "--insecure", "services", "-o", "json")
    assert insecure.exit_code == 0
    assert insecure.stderr == "cli_devops: --insecure: TLS certificates are not verified\n"


def test_tls_options_are_checked(cli, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    bad = cli("--cp-url", "https://127.0.0.1:1", "--ca-cert", str(garbage), "services")
    assert bad.exit_code == 2
    assert bad.stderr == f"cli_devops: error: --ca-cert {garbage}: not a PEM certificate file\n"
    both = cli("--ca-cert", str(garbage), "--insecure", "services")
    assert both.exit_code == 2
    assert "give --ca-cert or --insecure, not both" in both.stderr
    assert cli("--ca-cert", str(tmp_path / "missing.pem"), "services").exit_code == 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_proxy_from_the_environment_is_used(cli, served, monkeypatch):
    fleet = fleet_of(4)
    server = served(fleet)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    result = cli("--cp-url", "http://cpx.invalid:8081", "services", "-o", "json")
    assert result.exit_code == 0, result.stderr
    for record in records_of(result.stdout).values():
        assert_true_values(record, fleet)
    assert server.request_paths["/servers"] == 1


def test_no_proxy_bypasses_the_proxy(cli, served, monkeypatch):
    fleet = fleet_of(4)
    server = served(fleet)
    monkeypatch.setenv("http_proxy", f"127.0.0.1:{closed_port()}")
    refused = cli("--cp-url", server.url, "--retries", "0", "services")
    assert refused.exit_code == 3
    assert "cannot connect to the proxy: connection refused" in refused.stderr
    monkeypatch.setenv("no_proxy", "example.com, 127.0.0.1")
    assert cli("--cp-url", server.url, "services").exit_code == 0


def test_unsupported_proxy_is_a_usage_error_that_hides_the_url(cli, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:pa55word@10.9.9.9:1080")
    result = cli("--cp-url", "https://127.0.0.1:1", "services")
    assert result.exit_code == 2
    assert result.stderr == "cli_devops: error: https_proxy: only http:// proxies are supported\n"
