"""Alerts for Alertmanager's v2 API, named and labelled as the shipped Prometheus rules
(deploy/prometheus/alerts.yml) name theirs, so existing routes, inhibitions and silences apply.

As Prometheus does, a firing alert is re-sent every minute with `endsAt` a few minutes ahead
(Alertmanager resolves it by itself if `watch` stops), and a recovery is sent at once with
`endsAt` now.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from cli_devops.polling import rfc3339
from cli_devops.watch.events import Event
from cli_devops.watch.posting import Poster, Target

RESEND_SECONDS = 60.0
ENDS_AHEAD = timedelta(minutes=4)
ALERTS_PATH = "/api/v2/alerts"
JOB = "cpx"
"""The `job` label of the shipped rules' series."""

_RULES = {
    "service": ("CpxServiceUnderReplicated", "critical"),
    "instance": ("CpxInstanceUnhealthy", "warning"),
    "source": ("CpxApiDown", "critical"),
}
RUNBOOK = "docs/runbook.md#"
"""The rules' `runbook_url` annotation: this plus the alert's name in lower case."""


def alert(event: Event, now: datetime) -> dict[str, object]:
    """The alert for `event`'s condition: firing (ends ahead) or, for a recovery, resolved."""
    name, severity = _RULES[event.key[0]]
    labels = {"alertname": name, "severity": severity, "job": JOB}
    details = event.details
    if event.key[0] == "service":
        labels["cpx_service"] = str(event.service)
        summary = (
            f"CPX service {event.service} has fewer than {details['min_healthy']} healthy instances"
        )
        description = (
            f"{event.service} has {details['healthy']} healthy of {details['instances']} instances."
        )
    elif event.key[0] == "instance":
        labels["cpx_service"] = str(event.service)
        labels["ip"] = str(details["instance"])
        summary = f"CPX instance {details['instance']} ({event.service}) is unhealthy"
        description = (
            f"CPU {details['cpu']}%, memory {details['memory']}% on {details['instance']}."
        )
    else:
        labels["instance"] = str(details["source"])
        summary = f"The CPX API cannot be read at {details['source']}"
        description = str(details.get("error") or "")
    ends = now + ENDS_AHEAD if event.firing else now
    return {
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": RUNBOOK + name.lower(),
        },
        "startsAt": rfc3339(event.started),
        "endsAt": rfc3339(ends),
    }


class Alertmanager:
    """Posts alerts to one Alertmanager; `due` says when firing ones must be re-sent."""

    def __init__(self, base: Target) -> None:
        self.target = base.join(ALERTS_PATH)
        self.shown = base.shown
        self._last_sent: float | None = None

    def due(self, clock: float) -> bool:
        """Whether the firing alerts are due again; the first call starts the minute (each
        event was posted as it happened)."""
        if self._last_sent is None:
            self._last_sent = clock
            return False
        return clock - self._last_sent >= RESEND_SECONDS

    async def send(
        self, poster: Poster, events: Sequence[Event], now: datetime, clock: float | None = None
    ) -> str | None:
        """Post the alerts of `events`; `clock` given: this is the periodic re-send."""
        if clock is not None:
            self._last_sent = clock
        if not events:
            return None
        body = json.dumps([alert(event, now) for event in events]).encode()
        return await poster.post(self.target, body, {"Content-Type": "application/json"})
