"""The events `watch` reports: what changed, about what, with the figures that show it.

Field names are a public interface (docs/watch.md, with its JSON Schema): every event has
`time` (RFC 3339 UTC), `kind` and `service`; service events add `healthy`, `min_healthy` and
`instances`, instance events `instance`, `cpu`, `memory` and `status`, source events `source`
and `error`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cli_devops.polling import rfc3339

SERVICE_UNDER_REPLICATED = "service_under_replicated"
SERVICE_RECOVERED = "service_recovered"
INSTANCE_UNHEALTHY = "instance_unhealthy"
INSTANCE_RECOVERED = "instance_recovered"
SOURCE_UNREACHABLE = "source_unreachable"
SOURCE_RECOVERED = "source_recovered"

FIRING_KINDS = (SERVICE_UNDER_REPLICATED, INSTANCE_UNHEALTHY, SOURCE_UNREACHABLE)
RECOVERY_OF = {
    SERVICE_UNDER_REPLICATED: SERVICE_RECOVERED,
    INSTANCE_UNHEALTHY: INSTANCE_RECOVERED,
    SOURCE_UNREACHABLE: SOURCE_RECOVERED,
}
KINDS = (*FIRING_KINDS, *RECOVERY_OF.values())


@dataclass(frozen=True)
class Event:
    """One transition. `key` names the condition (("service", name), ("instance", ip) or
    ("source",)); `started` is when its condition was first seen, which Alertmanager gets as
    `startsAt`."""

    time: datetime
    kind: str
    service: str | None
    key: tuple[str, ...]
    started: datetime
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return self.kind in FIRING_KINDS

    def record(self) -> dict[str, object]:
        return {"time": rfc3339(self.time), "kind": self.kind, "service": self.service,
                **self.details}  # fmt: skip

    def to_json(self) -> str:
        """One line of JSON, non-ASCII escaped too: no byte of it can steer a terminal."""
        return json.dumps(self.record())

    def subject(self) -> str:
        """What the event is about, for a line on stderr."""
        if self.key[0] == "instance":
            return f"{self.key[1]} ({self.service})"
        if self.key[0] == "service":
            return str(self.service)
        return str(self.details.get("source", "the source"))
