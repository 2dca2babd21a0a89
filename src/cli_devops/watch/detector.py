"""From polls to transitions: which conditions hold, since when, and which events that makes.

Pure: a `Detector` is fed each poll's instances (or the poll's failure) with its time and
returns the events, so the rules are tested without a server. The rules:

- health is `health.summarize_services` with the command's thresholds and `min_healthy`, as for
  every other command; a service is under-replicated when it is flagged Unhealthy there;
- an instance that could not be read keeps its last state (last figures); one never read
  counts as unknown (not healthy) and has no instance condition;
- a failed poll is its own condition (`source_unreachable`) and changes nothing else: no
  recovery is ever inferred from an outage;
- a condition fires once it has held for `hold` seconds (0: at the first poll that sees it,
  the first poll of all included); one that ends sooner emits nothing; a recovery is emitted
  only for a condition that fired, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cli_devops.health import Status, Thresholds, instance_status, summarize_services
from cli_devops.model import Instance
from cli_devops.watch.events import (
    INSTANCE_UNHEALTHY,
    RECOVERY_OF,
    SERVICE_UNDER_REPLICATED,
    SOURCE_UNREACHABLE,
    Event,
)


@dataclass
class _Condition:
    since: datetime
    since_clock: float
    firing: bool = False


@dataclass(frozen=True)
class Moment:
    """When a poll began: wall-clock time for the events, a monotonic clock for the holds."""

    time: datetime
    clock: float


class Detector:
    """The conditions of one watch. `service`: only this service (as the API spells it, or
    as typed while it does not exist yet); None: every service seen."""

    def __init__(
        self,
        thresholds: Thresholds,
        min_healthy: int,
        *,
        hold: float = 0.0,
        service: str | None = None,
        source: str = "",
    ) -> None:
        self.thresholds = thresholds
        self.min_healthy = min_healthy
        self.hold = hold
        self.service = service
        self.source = source
        self._known: dict[str, Instance] = {}
        self._services: set[str] = set() if service is None else {service}
        self._conditions: dict[tuple[str, ...], _Condition] = {}
        self._firing: dict[tuple[str, ...], Event] = {}

    def firing(self) -> list[Event]:
        """The firing event of each condition that still holds (Alertmanager re-sends them)."""
        return list(self._firing.values())

    def rename(self, service: str) -> None:
        """The watched service turned out to be spelt `service` by the API."""
        if self.service is not None and service != self.service:
            old, new = ("service", self.service), ("service", service)
            if old in self._conditions:
                self._conditions[new] = self._conditions.pop(old)
            if old in self._firing:
                self._firing[new] = self._firing.pop(old)
            self._services.discard(self.service)
            self.service = service
            self._services.add(service)

    def unreachable(self, at: Moment, error: str) -> list[Event]:
        details = {"source": self.source, "error": error}
        return self._step(("source",), True, at, details)

    def observe(self, at: Moment, instances: Sequence[Instance]) -> list[Event]:
        """The events of one successful poll: the source back first, then instances, then
        services, each in name order."""
        events = self._step(("source",), False, at, {"source": self.source, "error": None})
        present = {instance.ip for instance in instances}
        for ip in set(self._known) - present:
            del self._known[ip]
        effective = []
        for instance in instances:
            if instance.error is None:
                self._known[instance.ip] = instance
            effective.append(self._known.get(instance.ip, instance))
        if self.service is not None:
            effective = [i for i in effective if i.service == self.service]
        events += self._instances(at, effective, present)
        events += self._services_step(at, effective)
        return events

    def _instances(
        self, at: Moment, effective: Sequence[Instance], present: set[str]
    ) -> list[Event]:
        events: list[Event] = []
        for key in [key for key in self._conditions if key[0] == "instance"]:
            if key[1] not in present:  # gone from the fleet: nothing more to say about it
                self._conditions.pop(key)
                self._firing.pop(key, None)
        for instance in sorted(effective, key=lambda i: i.ip):
            status = instance_status(instance, self.thresholds)
            if status is Status.UNKNOWN:
                continue
            details = {"instance": instance.ip, "cpu": instance.cpu, "memory": instance.memory,
                       "status": status.value}  # fmt: skip
            unhealthy = status is Status.UNHEALTHY
            events += self._step(("instance", instance.ip), unhealthy, at, details,
                                 service=instance.service)  # fmt: skip
        return events

    def _services_step(self, at: Moment, effective: Sequence[Instance]) -> list[Event]:
        summaries = {
            summary.service: summary
            for summary in summarize_services(effective, self.thresholds, self.min_healthy)
        }
        self._services.update(summaries)
        events: list[Event] = []
        for name in sorted(self._services):
            summary = summaries.get(name)
            healthy = summary.healthy if summary else 0
            details = {"healthy": healthy, "min_healthy": self.min_healthy,
                       "instances": summary.instances if summary else 0}  # fmt: skip
            flagged = summary is None or summary.status is Status.UNHEALTHY
            events += self._step(("service", name), flagged, at, details, service=name)
        return events

    def _step(
        self,
        key: tuple[str, ...],
        holds: bool,
        at: Moment,
        details: Mapping[str, object],
        *,
        service: str | None = None,
    ) -> list[Event]:
        if key[0] == "source":
            service = self.service
        condition = self._conditions.get(key)
        if not holds:
            if condition is None:
                return []
            del self._conditions[key]
            fired = self._firing.pop(key, None)
            if fired is None:
                return []
            kind = RECOVERY_OF[fired.kind]
            return [Event(at.time, kind, service, key, condition.since, details)]
        if condition is None:
            condition = self._conditions[key] = _Condition(at.time, at.clock)
        if condition.firing or at.clock - condition.since_clock < self.hold:
            return []
        condition.firing = True
        kind = {"service": SERVICE_UNDER_REPLICATED, "instance": INSTANCE_UNHEALTHY,
                "source": SOURCE_UNREACHABLE}[key[0]]  # fmt: skip
        event = Event(at.time, kind, service, key, condition.since, details)
        self._firing[key] = event
        return [event]
