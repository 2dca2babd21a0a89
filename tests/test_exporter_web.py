"""The exporter behind TLS and basic auth from a web configuration file (the exporter toolkit's
format), build info and /-/healthy, and a real Prometheus scraping it over TLS with basic auth."""

from __future__ import annotations

import base64
import http.client
import json
import platform
import re
import signal
import ssl
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import bcrypt
import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_devops import __version__
from cli_devops.client import ClientSettings
from cli_devops.exporter import Exporter
from cli_devops.exporter.web_config import (
    BasicAuth,
    WebConfig,
    WebConfigError,
    load_web_config,
    parse_basic,
)

from .conftest import hermetic_environ, run_process, stop_process
from .scraping import (
    Answer,
    expected_samples,
    get,
    messages,
    query,
    running_prometheus,
    samples,
    without_duration,
)

PASSWORD = "correct horse"
# Cost 4 keeps the tests fast; the $2y$ prefix is what htpasswd -B writes.
FIXED_HASH = "$2y$04$vohCPwOLTPhf.V4j/oDdFuPVru/AlN2VNFCnwYKGnWUJAryFgt8rm"
"""A hash fixed in the source, for parametrized cases: their ids must be the same in every
test worker."""
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def certs(ca: trustme.CA, tmp_path: Path) -> Path:
    """server.pem/server.key for 127.0.0.1 and ca.pem, in tmp_path."""
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return tmp_path


def web_file(directory: Path, text: str) -> Path:
    path = directory / "web.yml"
    path.write_text(text)
    return path


TLS_AND_AUTH = f"""\
# as for node_exporter
tls_server_config:
  cert_file: server.pem
  key_file: server.key
basic_auth_users:
  prometheus: {HASH}
"""


def https_get(
    url: str,
    ca: trustme.CA,
    *,
    auth: tuple[str, str] | None = None,
    path: str = "/metrics",
    client_cert: trustme.LeafCert | None = None,
) -> Answer:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if client_cert is not None:
        client_cert.configure_cert(context)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, timeout=60, context=context
    )
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


@pytest.fixture
def secured(sim, certs) -> Iterator[Exporter]:
    exporter = Exporter(ClientSettings(sim.url))
    exporter.web = load_web_config(web_file(certs, TLS_AND_AUTH))
    with exporter:
        yield exporter


def test_basic_auth_over_tls(secured, ca, fleet):
    assert secured.url.startswith("https://127.0.0.1:")
    none = https_get(secured.url, ca)
    assert none.status == 401
    assert none.headers["www-authenticate"] == 'Basic realm="cpx-exporter"'
    assert "cpx_" not in none.text
    assert https_get(secured.url, ca, auth=("prometheus", "wrong")).status == 401
    assert https_get(secured.url, ca, auth=("nobody", PASSWORD)).status == 401
    assert https_get(secured.url, ca, auth=("prometheus", PASSWORD + "x" * 80)).status == 401
    right = https_get(secured.url, ca, auth=("prometheus", PASSWORD))
    assert right.status == 200
    assert without_duration(samples(right.text)) == expected_samples(fleet)
    # a second scrape is answered from the credentials cache, with the same result
    assert https_get(secured.url, ca, auth=("prometheus", PASSWORD)).status == 200
    assert https_get(secured.url, ca, path="/-/healthy").status == 401
    healthy = https_get(secured.url, ca, path="/-/healthy", auth=("prometheus", PASSWORD))
    assert (healthy.status, healthy.text) == (200, "ok\n")


def test_plain_http_to_the_tls_port_is_dropped_and_the_exporter_carries_on(secured, ca):
    parts = urllib.parse.urlsplit(secured.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.request("GET", "/metrics")
        conn.getresponse().read()
    conn.close()
    assert https_get(secured.url, ca, auth=("prometheus", PASSWORD)).status == 200


def test_build_info_and_healthy_without_a_web_config(sim):
    with Exporter(ClientSettings(sim.url)) as exporter:
        assert exporter.url.startswith("http://")
        found = samples(get(exporter.url).text)
        healthy = get(exporter.url, "/-/healthy")
    labels = (("python_version", platform.python_version()), ("version", __version__))
    assert found["cpx_exporter_build_info", labels] == 1
    assert (healthy.status, healthy.text) == (200, "ok\n")


def test_client_certificates_when_required(sim, certs, ca):
    path = web_file(
        certs,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
        "  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
    )
    exporter = Exporter(ClientSettings(sim.url))
    exporter.web = load_web_config(path)
    with exporter:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(exporter.url, ca)
        stranger = trustme.CA().issue_cert("client")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(exporter.url, ca, client_cert=stranger)
        answer = https_get(exporter.url, ca, client_cert=ca.issue_cert("client"))
        assert answer.status == 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config: [\n", "line 2: not valid YAML"),
        ("- a\n- b\n", "the file must be a mapping"),
        ("tls_config: {}\n", "unknown key 'tls_config'; expected one of tls_server_config"),
        ("tls_server_config:\n  cert_file: server.pem\n", "needs both cert_file and key_file"),
        ("tls_server_config:\n  cert_file: nope.pem\n  key_file: server.key\n",
         "cannot load cert_file 'nope.pem' with key_file 'server.key': No such file"),
        ("tls_server_config:\n  cert_file: server.key\n  key_file: server.pem\n",
         "cannot load cert_file 'server.key' with key_file 'server.pem'"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
         "  min_version: SSL3\n",
         "invalid tls_server_config.min_version 'SSL3'; expected one of TLS10"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
         "  client_auth_type: RequireAndVerifyClientCert\n", "needs a client_ca_file"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
         "  client_ca_file: ca.pem\n", "client_ca_file is set without a client_auth_type"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
         "  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.pem\n",
         "RequireAnyClientCert is not supported"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
         "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "cipher_suites is not supported"),
        ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice is not a bcrypt hash"),
        ("basic_auth_users:\n  'a:b': " + FIXED_HASH + "\n", "invalid user name 'a:b'"),
        ("basic_auth_users: [alice]\n", "basic_auth_users must be a mapping"),
        ("http_server_config:\n  headers: {X-Frame-Options: deny}\n",
         "http_server_config.headers is not supported"),
    ],
)  # fmt: skip
def test_an_invalid_file_is_one_clear_error(certs, text, message):
    path = web_file(certs, text)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 5000, "not valid YAML: nested too deeply"),
        ("basic_auth_users: 2001-13-45\n", "not valid YAML: month must be in 1..12"),
        ("a: !!python/object:os.system x\n", "line 1: not valid YAML: could not determine a "
                                             "constructor"),
        ("tls_server_config: &a {x: *a}\n", "unknown key tls_server_config.x"),
    ],
)  # fmt: skip
def test_hostile_yaml_is_one_clear_error(tmp_path, text, message):
    with pytest.raises(WebConfigError, match=re.escape(message)):
        load_web_config(web_file(tmp_path, text))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=300))
def test_any_web_config_text_loads_or_is_one_clear_error(tmp_path, text):
    path = tmp_path / "fuzz.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_web_config(path)
    except WebConfigError as err:
        assert str(err).startswith(str(path))


def test_a_missing_file_and_an_empty_one(tmp_path):
    with pytest.raises(WebConfigError, match=r"cannot read web config file .*: No such file"):
        load_web_config(tmp_path / "absent.yml")
    assert load_web_config(web_file(tmp_path, "")) == WebConfig()


def test_an_encrypted_key_is_refused_without_a_prompt(certs, ca):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((certs / "server.key").read_bytes(), None)
    (certs / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    )
    with pytest.raises(
        WebConfigError,
        match=r"cannot load cert_file .*: the key is encrypted; give an unencrypted key_file",
    ):
        load_web_config(web_file(certs, TLS_AND_AUTH))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Bearer abc", None),
        ("Basic !!!", None),
        ("Basic " + base64.b64encode(b"nocolon").decode(), None),
        ("basic " + base64.b64encode(b"u:p:q").decode(), (b"u", b"p:q")),
        ("Basic " + base64.b64encode(b":").decode(), (b"", b"")),
    ],
)
def test_parse_basic(header, expected):
    assert parse_basic(header) == expected


def test_basic_auth_with_a_nul_byte_or_unknown_user_fails_quietly():
    auth = BasicAuth({"u": HASH.encode()})
    assert not auth.check("Basic " + base64.b64encode(b"u:a\0b").decode())
    assert not auth.check("Basic " + base64.b64encode(b"other:" + PASSWORD.encode()).decode())
    assert auth.check("Basic " + base64.b64encode(b"u:" + PASSWORD.encode()).decode())


@pytest.mark.slow
@pytest.mark.system
def test_real_prometheus_scrapes_over_tls_with_basic_auth(sim, certs, tmp_path):
    exporter = Exporter(ClientSettings(sim.url))
    exporter.web = load_web_config(web_file(certs, TLS_AND_AUTH))
    with ExitStack() as stack:
        stack.enter_context(exporter)
        target = urllib.parse.urlsplit(exporter.url).netloc
        job = (
            "  - job_name: {name}\n    scheme: https\n"
            f"    tls_config:\n      ca_file: {json.dumps(str(certs / 'ca.pem'))}\n"
            "    basic_auth:\n      username: prometheus\n      password: {password}\n"
            f'    static_configs:\n      - targets: ["{target}"]\n'
        )
        scrape_configs = (
            "scrape_configs:\n"
            + job.format(name="cpx", password=json.dumps(PASSWORD))
            + job.format(name="intruder", password='"guess"')
        )
        prometheus = stack.enter_context(
            running_prometheus(tmp_path, [], scrape_configs=scrape_configs)
        )
        seen: dict[str, object] = {}

        def scraped() -> bool:
            result = query(prometheus.url, "/api/v1/query", query="up")
            assert isinstance(result, dict)
            seen["up"] = {item["metric"]["job"]: item["value"][1] for item in result["result"]}
            info = query(prometheus.url, "/api/v1/query", query="cpx_exporter_build_info")
            assert isinstance(info, dict)
            seen["info"] = [item["metric"].get("version") for item in info["result"]]
            cpx_up = query(prometheus.url, "/api/v1/query", query="cpx_up")
            assert isinstance(cpx_up, dict)
            seen["cpx_up"] = [item["value"][1] for item in cpx_up["result"]]
            return (
                seen["up"] == {"cpx": "1", "intruder": "0"}
                and seen["info"] == [__version__]
                and seen["cpx_up"] == ["1"]
            )

        prometheus.poll(scraped, seen)


def test_exporter_command_serves_tls_with_basic_auth(sim, certs, ca):
    config = web_file(certs, TLS_AND_AUTH)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli_devops", "--cp-url", sim.url, "exporter",
         "--listen", "127.0.0.1:0", "--web.config.file", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hermetic_environ(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving CPX metrics on https://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].split("/metrics", 1)[0]
        assert https_get(url, ca).status == 401
        assert https_get(url, ca, auth=("prometheus", PASSWORD)).status == 200
        out, err = stop_process(process, signal.SIGTERM)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert out == ""
    assert messages(err) == ["listening", "stopping"]


def test_exporter_command_with_a_bad_web_config_fails_at_start(sim, certs):
    config = web_file(certs, "basic_auth_users:\n  prometheus: hunter2\n")
    result = run_process("--cp-url", sim.url, "exporter", "--listen", "127.0.0.1:0",
                         "--web.config.file", str(config), timeout=30)  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"cli_devops: error: {config}: basic_auth_users.prometheus is not a bcrypt hash "
        "($2y$10$ and 53 characters; make one with htpasswd -nBC 10 USER)\n"
    )
    missing = run_process("exporter", "--web.config.file", str(certs / "absent.yml"))
    assert missing.exit_code == 2
    assert "absent.yml' does not exist" in missing.stderr
