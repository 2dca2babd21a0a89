"""One object for a run: the environment, the health thresholds and the client settings.

Every command (the one-shot commands, `track`, the exporter) receives an `App`; none of them
imports another command's module to get it. `read_fleet` is the one read of the fleet the
one-shot commands share, with what could not be read reported on stderr.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from cli_devops.environment import Environment
from cli_devops.errors import IncompleteData
from cli_devops.health import Thresholds
from cli_devops.model import Instance
from cli_devops.settings import ClientSettings
from cli_devops.text import plural, terminal_safe


@dataclass
class App:
    """Everything a command needs besides its own options."""

    settings: ClientSettings = field(default_factory=ClientSettings)
    thresholds: Thresholds = field(default_factory=Thresholds)
    env: Environment = field(default_factory=Environment)
    strict: bool = False
    """Whether an instance that could not be read makes the run fail (exit 4)."""
    debug: bool = False

    @property
    def base_url(self) -> str:
        return self.settings.base_url


def read_fleet(app: App) -> list[Instance]:
    """One snapshot of the fleet, with what could not be read reported on stderr."""
    from cli_devops.client import fetch_snapshot

    snapshot = fetch_snapshot(app.settings)
    if snapshot.skipped:
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
