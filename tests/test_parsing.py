"""Parsers of untrusted API answers and the terminal sanitiser, with property tests."""

from __future__ import annotations

import contextlib
import ipaddress
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cli_devops.client import normalize_base_url
from cli_devops.errors import PayloadError, UsageError
from cli_devops.health import Status, Thresholds, instance_status
from cli_devops.model import Instance, ip_sort_key, parse_instance, parse_percent, parse_servers
from cli_devops.text import terminal_safe

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("61%", 61), ("61", 61), (61, 61), ("61.5%", 61.5), (0, 0), ("100%", 100), (99.9, 99.9)],
)
def test_parse_percent_accepts_the_api_forms(value, expected):
    assert parse_percent(value, "cpu") == expected


@pytest.mark.parametrize(
    "value", ["", "%", "abc", "-1%", "101", "1e2", "nan", "inf", "1_0", True, None, [], {}, 100.01]
)
def test_parse_percent_rejects_everything_else(value):
    with pytest.raises(PayloadError):
        parse_percent(value, "cpu")


@given(json_values)
def test_parse_instance_never_raises_and_is_valid_or_explained(payload):
    instance = parse_instance("10.0.0.1", payload)
    if instance.error is None:
        assert isinstance(instance.service, str)
        assert instance.cpu is not None and 0 <= instance.cpu <= 100 and math.isfinite(instance.cpu)
        assert instance.memory is not None and 0 <= instance.memory <= 100
    else:
        assert instance.cpu is None and instance.memory is None


def _displayable(text: str) -> bool:
    return any(char.isprintable() and not char.isspace() for char in text)


@given(st.floats(0, 100), st.floats(0, 100), st.text(min_size=1).filter(_displayable))
def test_valid_payloads_round_trip(cpu, memory, service):
    instance = parse_instance(
        "10.0.0.1", {"cpu": f"{cpu:f}%", "memory": memory, "service": service}
    )
    if len(service) <= 256:
        assert (instance.service, instance.error) == (service, None)
        assert instance.cpu == pytest.approx(cpu, abs=1e-6) and instance.memory == pytest.approx(
            memory
        )


@given(json_values)
def test_parse_servers_keeps_only_ip_addresses(payload):
    try:
        listing = parse_servers(payload)
    except PayloadError:
        assert not isinstance(payload, list)
        return
    assert isinstance(payload, list)
    assert listing.skipped + listing.duplicates + len(listing.ips) == len(payload)
    assert all("/" not in ip and "?" not in ip and "%" not in ip for ip in listing.ips)


octet = st.one_of(
    st.integers(0, 300).map(str),
    st.integers(0, 99).map(lambda n: f"0{n}"),
    st.sampled_from(["", "\u0663", "\uff11", "+1", " 1", "1_0", "-0", "1 "]),
)
dotted = st.lists(octet, min_size=3, max_size=5).map(".".join)


@given(st.lists(dotted | st.ip_addresses().map(str), max_size=8))
@example(["1.2.3.\u0663", "256.1.1.1", "1.2.3.255", "01.2.3.4", "0.0.0.0", "1.2.3", "1.2.3.4.5"])
def test_parse_servers_accepts_exactly_what_ipaddress_accepts(entries):
    """The fast IPv4 path agrees with the standard library on every dotted string."""
    expected = set()
    for entry in entries:
        with contextlib.suppress(ValueError):
            expected.add(ipaddress.ip_address(entry))
    listing = parse_servers(entries)
    assert {ipaddress.ip_address(ip) for ip in listing.ips} == expected
    assert len(listing.ips) == len(expected)
    assert listing.ips == sorted(listing.ips, key=ip_sort_key)


def _reference_listing(entries):
    """What parse_servers must return, decided by the standard library one entry at a time."""
    seen = {}
    for entry in entries:
        with contextlib.suppress(ValueError, TypeError):
            seen.setdefault(ipaddress.ip_address(entry), entry)
    ordered = sorted(seen, key=lambda address: (address.version, int(address)))
    return [seen[address] for address in ordered]


@given(st.lists(st.ip_addresses(v=4).map(str), max_size=40).flatmap(st.permutations))
def test_parse_servers_of_plain_ipv4_orders_and_dedupes_like_ipaddress(entries):
    """The listing of IPv4 addresses only (decided in C loops) agrees with the standard library."""
    doubled = entries + entries[: len(entries) // 2]
    listing = parse_servers(doubled)
    assert listing.ips == _reference_listing(doubled)
    assert (listing.skipped, listing.duplicates) == (0, len(doubled) - len(listing.ips))


@given(st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=6), dotted)
@example(["10.0.0.1"], "1.2.3.4\n")
@example(["10.0.0.1"], "1.2.3.4\x00")
@example(["10.0.0.1"], "1.2.3.4 x")
@example(["10.0.0.1"], "0x1.2.3.4")
@example(["10.0.0.1"], "1.2.3")
@example(["10.0.0.1"], "017.0.0.1")
def test_one_odd_entry_among_plain_ipv4_is_decided_like_ipaddress(entries, odd):
    listing = parse_servers([*entries, odd])
    assert listing.ips == _reference_listing([*entries, odd])
    assert listing.skipped + listing.duplicates + len(listing.ips) == len(entries) + 1


def test_parse_servers_dedupes_equal_addresses():
    listing = parse_servers(["10.0.0.1", "2001:db8::1", "2001:DB8:0::1", "10.0.0.1", "host"])
    assert listing.ips == ["10.0.0.1", "2001:db8::1"]
    assert (listing.skipped, listing.duplicates) == (1, 2)


@given(st.text())
def test_terminal_safe_leaves_nothing_unprintable(text):
    safe = terminal_safe(text)
    assert safe.isprintable()
    assert "\x1b" not in safe


def test_health_rule_boundary():
    th = Thresholds()
    assert instance_status(Instance("ip", "s", 90, 90), th) is Status.HEALTHY
    assert instance_status(Instance("ip", "s", 90.01, 0), th) is Status.UNHEALTHY
    assert instance_status(Instance("ip", "s", 0, 91), th) is Status.UNHEALTHY
    assert instance_status(Instance("ip", "s", None, None, "timeout"), th) is Status.UNKNOWN


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("https://cpx.example.com/api/", "https://cpx.example.com/api"),
    ],
)
def test_normalize_base_url(raw, expected):
    assert normalize_base_url(raw) == expected


@pytest.mark.parametrize("raw", ["ftp://host", "http://", "http://host:99999", "http://h/?q=1"])
def test_normalize_base_url_rejects(raw):
    with pytest.raises(UsageError):
        normalize_base_url(raw)


def test_parse_servers_returns_numeric_order():
    listing = parse_servers(["10.0.0.10", "::1", "10.0.0.2", "9.255.255.255", "10.0.0.1"])
    assert listing.ips == ["9.255.255.255", "10.0.0.1", "10.0.0.2", "10.0.0.10", "::1"]
