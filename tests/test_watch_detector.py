"""The rules of `watch`, poll by poll, without a server: what fires, when, and what recovers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cli_devops.health import Thresholds
from cli_devops.model import Instance
from cli_devops.watch.detector import Detector, Moment
from cli_devops.watch.events import Event

START = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> Moment:
    return Moment(START + timedelta(seconds=seconds), seconds)


def ok(ip: str, service: str = "Pay") -> Instance:
    return Instance(ip, service, 10, 20)


def hot(ip: str, service: str = "Pay") -> Instance:
    return Instance(ip, service, 95, 20)


def unread(ip: str) -> Instance:
    return Instance(ip, None, None, None, "timeout")


def kinds(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(event.kind, event.subject()) for event in events]


def detector(hold: float = 0.0, service: str | None = None) -> Detector:
    return Detector(Thresholds(), 2, hold=hold, service=service, source="http://cpx")


def test_a_condition_true_at_the_first_poll_fires_at_once():
    watch = detector()
    events = watch.observe(at(0), [ok("10.0.0.1"), hot("10.0.0.2")])
    assert kinds(events) == [
        ("instance_unhealthy", "10.0.0.2 (Pay)"),
        ("service_under_replicated", "Pay"),
    ]
    assert events[1].record() == {
        "time": "2026-01-01T00:00:00.000Z", "kind": "service_under_replicated", "service": "Pay",
        "healthy": 1, "min_healthy": 2, "instances": 2,
    }  # fmt: skip
    assert events[0].record()["status"] == "Unhealthy"
    assert events[0].record()["cpu"] == 95


def test_each_event_once_and_a_recovery_only_after_its_firing():
    watch = detector()
    assert watch.observe(at(0), [ok("10.0.0.1"), ok("10.0.0.2")]) == []
    assert kinds(watch.observe(at(1), [ok("10.0.0.1"), hot("10.0.0.2")])) == [
        ("instance_unhealthy", "10.0.0.2 (Pay)"), ("service_under_replicated", "Pay"),
    ]  # fmt: skip
    assert watch.observe(at(2), [ok("10.0.0.1"), hot("10.0.0.2")]) == []
    recovered = watch.observe(at(3), [ok("10.0.0.1"), ok("10.0.0.2")])
    assert kinds(recovered) == [("instance_recovered", "10.0.0.2 (Pay)"),
                                ("service_recovered", "Pay")]  # fmt: skip
    assert recovered[1].started == START + timedelta(seconds=1)
    assert watch.observe(at(4), [ok("10.0.0.1"), ok("10.0.0.2")]) == []


def test_for_holds_a_condition_back_and_a_shorter_blip_emits_nothing():
    watch = detector(hold=10)
    healthy = [ok("10.0.0.1"), ok("10.0.0.2")]
    blip = [ok("10.0.0.1"), hot("10.0.0.2")]
    assert watch.observe(at(0), blip) == []
    assert watch.observe(at(9), blip) == []
    assert watch.observe(at(10), healthy) == []  # lasted 9 s < 10 s: nothing, no recovery
    assert watch.observe(at(20), blip) == []
    assert kinds(watch.observe(at(30), blip)) == [
        ("instance_unhealthy", "10.0.0.2 (Pay)"), ("service_under_replicated", "Pay"),
    ]  # fmt: skip
    assert len(watch.firing()) == 2


def test_an_outage_is_its_own_event_and_never_a_recovery():
    watch = detector()
    watch.observe(at(0), [ok("10.0.0.1"), hot("10.0.0.2")])
    down = watch.unreachable(at(1), "connection refused")
    assert kinds(down) == [("source_unreachable", "http://cpx")]
    assert down[0].record() == {
        "time": "2026-01-01T00:00:01.000Z", "kind": "source_unreachable", "service": None,
        "source": "http://cpx", "error": "connection refused",
    }  # fmt: skip
    assert watch.unreachable(at(2), "connection refused") == []
    back = watch.observe(at(3), [ok("10.0.0.1"), ok("10.0.0.2")])
    assert kinds(back) == [("source_recovered", "http://cpx"),
                           ("instance_recovered", "10.0.0.2 (Pay)"),
                           ("service_recovered", "Pay")]  # fmt: skip


def test_an_unread_instance_keeps_its_last_state():
    watch = detector()
    watch.observe(at(0), [ok("10.0.0.1"), ok("10.0.0.2")])
    assert watch.observe(at(1), [ok("10.0.0.1"), unread("10.0.0.2")]) == []
    watch2 = detector()
    watch2.observe(at(0), [ok("10.0.0.1"), hot("10.0.0.2")])
    assert watch2.observe(at(1), [ok("10.0.0.1"), unread("10.0.0.2")]) == []  # no recovery
    assert len(watch2.firing()) == 2


def test_an_instance_never_read_is_not_healthy():
    watch = detector()
    assert kinds(watch.observe(at(0), [ok("10.0.0.1"), unread("10.0.0.2")])) == [
        ("service_under_replicated", "Pay"),
    ]  # fmt: skip


def test_a_watched_service_that_does_not_exist_yet_is_under_replicated_until_it_does():
    watch = detector(service="Checkout")
    events = watch.observe(at(0), [ok("10.0.0.1")])
    assert kinds(events) == [("service_under_replicated", "Checkout")]
    assert events[0].record()["instances"] == 0
    watch.observe(at(1), [ok("10.0.0.1"), hot("10.0.0.2", "Checkout")])
    deployed = [ok("10.0.0.2", "Checkout"), ok("10.0.0.3", "Checkout")]
    assert kinds(watch.observe(at(2), deployed)) == [
        ("instance_recovered", "10.0.0.2 (Checkout)"), ("service_recovered", "Checkout"),
    ]  # fmt: skip


def test_other_services_are_not_watched_with_a_service():
    watch = detector(service="Pay")
    assert watch.observe(at(0), [ok("10.0.0.1"), ok("10.0.0.2"), hot("10.0.0.3", "Geo")]) == []


def test_a_service_found_under_another_spelling_keeps_its_condition():
    watch = detector(service="checkout")
    assert kinds(watch.observe(at(0), [ok("10.0.0.1")])) == [
        ("service_under_replicated", "checkout")
    ]
    watch.rename("Checkout")
    assert watch.observe(at(1), [ok("10.0.0.2", "Checkout")]) == []  # still 1 of 2: no new firing
    recovered = watch.observe(at(2), [ok("10.0.0.2", "Checkout"), ok("10.0.0.3", "Checkout")])
    assert kinds(recovered) == [("service_recovered", "Checkout")]
    assert watch.firing() == []
