"""One object for a run: the environment, the health thresholds and the client settings.

Every command (the one-shot commands, `track`, the exporter) receives a `RunConfig`; none of them
imports another command's module to get it. `read_fleet` is the one read of the fleet the
one-shot commands share, with what could not be read reported on stderr; it reads CPX, or
Prometheus when `RunConfig.prometheus` is set. `open_source` is the same choice for the live views.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cli_devops.environment import Environment
from cli_devops.errors import IncompleteData
from cli_devops.health import Thresholds
from cli_devops.model import Instance
from cli_devops.progress import ProgressLine
from cli_devops.settings import ClientSettings, PrometheusSettings
from cli_devops.text import plural, terminal_safe

if TYPE_CHECKING:
    from cli_devops.client import CpxClient, Snapshot
    from cli_devops.sources.prometheus import PrometheusSource


@dataclass
class RunConfig:
    """Everything a command needs besides its own options."""

    settings: ClientSettings = field(default_factory=ClientSettings)
    thresholds: Thresholds = field(default_factory=Thresholds)
    env: Environment = field(default_factory=Environment)
    strict: bool = False
    """Whether an instance that could not be read makes the run fail (exit 4)."""
    debug: bool = False
    prometheus: PrometheusSettings | None = None
    """Read the fleet from this Prometheus instead of CPX (`settings` is then unused)."""

    @property
    def base_url(self) -> str:
        """Where the fleet is read from (shown by the live views)."""
        if self.prometheus is not None:
            return self.prometheus.client.base_url
        return self.settings.base_url


def open_source(app: RunConfig) -> CpxClient | PrometheusSource:
    """The fleet source `app` names, for `async with`: Prometheus, else the CPX API. Both have
    `snapshot()`; `PrometheusSource` also has `history()`, for views that open with a past."""
    if app.prometheus is not None:
        from cli_devops.sources.prometheus import PrometheusSource

        return PrometheusSource(app.prometheus)
    from cli_devops.client import CpxClient

    return CpxClient(app.settings)


def _read_snapshot(app: RunConfig, *, progress: bool = False) -> Snapshot:
    if app.prometheus is None:
        from cli_devops.client import fetch_snapshot

        if not (progress and app.env.stderr_isatty and not app.debug):
            return fetch_snapshot(app.settings)
        shown = ProgressLine(app.env)
        try:
            return fetch_snapshot(app.settings, watch=shown.update)
        finally:
            shown.close()
    from cli_devops.sources.prometheus import fetch_fleet

    read = fetch_fleet(app.prometheus)
    for line in read.down:
        app.env.warn(line)
    return read.snapshot


def read_fleet(app: RunConfig, *, progress: bool = False) -> list[Instance]:
    """One snapshot of the fleet, with what could not be read reported on stderr; `progress`
    allows a transient progress line on a terminal's stderr while a long read runs."""
    snapshot = _read_snapshot(app, progress=progress)
    if snapshot.skipped and app.prometheus is not None:
        what = (
            "whose ip label is not an IP address"
            if snapshot.skipped == 1
            else "whose ip labels are not IP addresses"
        )
        app.env.warn(f"skipped {plural(snapshot.skipped, 'series', 'series')} {what}")
    elif snapshot.skipped:
        what = "that is not an IP address" if snapshot.skipped == 1 else "that are not IP addresses"
        entries = plural(snapshot.skipped, "/servers entry", "/servers entries")
        app.env.warn(f"skipped {entries} {what}")
    if snapshot.duplicates:
        entries = plural(
            snapshot.duplicates, "duplicate /servers entry", "duplicate /servers entries"
        )
        app.env.warn(f"ignored {entries}")
    report_unread(snapshot.unread, len(snapshot.instances), app.env)
    if app.strict and snapshot.unread:
        raise IncompleteData(f"{plural(len(snapshot.unread), 'instance')} could not be read")
    return snapshot.instances


def report_unread(unread: Sequence[Instance], total: int, env: Environment) -> None:
    """One stderr line: how many instances could not be read, with the commonest reasons."""
    if not unread:
        return
    reasons = Counter(terminal_safe(instance.error or "unknown") for instance in unread)
    top = reasons.most_common(3)
    listed = [f"{count} × {reason}" for reason, count in top]
    rest = len(unread) - sum(count for _, count in top)
    if rest:
        listed.append(f"{rest} for other reasons")
    of_total = f"{len(unread)} of {plural(total, 'instance')}"
    env.warn(f"{of_total} could not be read ({', '.join(listed)})")
