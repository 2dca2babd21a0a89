"""The one-shot commands as typed functions: plain values in, output written, exit status out.

`cli.py` only parses options and calls these; everything here is callable from Python too.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cli_devops.environment import Environment
from cli_devops.errors import ExitStatus, IncompleteData, UsageError
from cli_devops.health import (
    DEFAULT_MIN_HEALTHY,
    Thresholds,
    instance_status,
    summarize_services,
    under_replicated,
)
from cli_devops.model import Instance, ip_sort_key
from cli_devops.render import (
    OutputFormat,
    flagged_report,
    instances_report,
    status_report,
    terminal_safe,
    write_report,
)

if TYPE_CHECKING:
    from cli_devops.client import ClientSettings


@dataclass
class App:
    """Everything a command needs besides its own options."""

    base_url: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    timeout: float = 5.0
    concurrency: int | None = None
    strict: bool = False
    debug: bool = False
    env: Environment = field(default_factory=Environment)
    retries: int | None = None
    deadline: float | None = None
    token: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    insecure: bool = False

    def client_settings(self) -> ClientSettings:
        from urllib.request import getproxies_environment

        from cli_devops.client import DEFAULT_RETRIES, ClientSettings

        return ClientSettings(
            base_url=self.base_url,
            timeout=self.timeout,
            concurrency=self.concurrency,
            log=self.env.warn if self.debug else None,
            retries=DEFAULT_RETRIES if self.retries is None else self.retries,
            deadline=self.deadline,
            token=self.token,
            ca_cert=self.ca_cert,
            insecure=self.insecure,
            proxies=getproxies_environment(),
        )


def read_fleet(app: App) -> list[Instance]:
    """One snapshot of the fleet, with what could not be read reported on stderr."""
    from cli_devops.client import fetch_snapshot

    snapshot = fetch_snapshot(app.client_settings())
    if snapshot.skipped:
        app.env.warn(f"skipped {snapshot.skipped} /servers entries that are not IP addresses")
    if snapshot.duplicates:
        app.env.warn(f"ignored {snapshot.duplicates} duplicate /servers entries")
    report_unread(snapshot.unread, len(snapshot.instances), app.env)
    if app.strict and snapshot.unread:
        raise IncompleteData(
            f"{plural(len(snapshot.unread), 'instance')} could not be read and --strict was given"
        )
    return snapshot.instances


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def report_unread(unread: Sequence[Instance], total: int, env: Environment) -> None:
    if not unread:
        return
    reasons = Counter(terminal_safe(instance.error or "unknown") for instance in unread)
    top = reasons.most_common(3)
    listed = [f"{count} × {reason}" for reason, count in top]
    rest = len(unread) - sum(count for _, count in top)
    if rest:
        listed.append(f"{rest} for other reasons")
    env.warn(f"{len(unread)} of {total} instances could not be read ({', '.join(listed)})")


def resolve_service(name: str, known: Iterable[str]) -> str:
    """The service as the API spells it; a case-insensitive match is accepted when unique.

    Raises UsageError with the closest names when there is no such service.
    """
    names = sorted(set(known))
    if name in names:
        return name
    folded = [known_name for known_name in names if known_name.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.8)
    hint = f"; did you mean {', '.join(map(terminal_safe, close))}?" if close else ""
    listing = "" if close else f"; known services: {', '.join(map(terminal_safe, names[:20]))}"
    raise UsageError(f"no service named {terminal_safe(name)!r}{hint}{listing}")


def services_of(instances: Iterable[Instance]) -> set[str]:
    """The service names present (instances that could not be read at all have none)."""
    return {instance.service for instance in instances if instance.service is not None}


def _sort_key(sort: str, thresholds: Thresholds) -> Callable[[Instance], tuple[object, ...]]:
    def key(instance: Instance) -> tuple[object, ...]:
        ip = ip_sort_key(instance.ip)
        if sort == "service":
            return (instance.service is None, instance.service or "", ip)
        if sort == "status":
            return (instance_status(instance, thresholds).value, ip)
        if sort in ("cpu", "memory"):
            value = getattr(instance, sort)
            return (value is None, -(value or 0.0), ip)
        return (ip,)

    return key


def services(
    app: App,
    *,
    service: str | None = None,
    status: str | None = None,
    sort: str = "ip",
    output: OutputFormat = "table",
) -> ExitStatus:
    """List instances (numeric IP order by default; cpu/memory sort the busiest first)."""
    instances = read_fleet(app)
    if service is not None:
        name = resolve_service(service, services_of(instances))
        instances = [instance for instance in instances if instance.service == name]
    if status is not None:
        instances = [
            instance
            for instance in instances
            if instance_status(instance, app.thresholds).value.lower() == status.lower()
        ]
    if sort != "ip":
        instances = sorted(instances, key=_sort_key(sort, app.thresholds))
    write_report(instances_report(instances, app.thresholds), output, app.env)
    return ExitStatus.OK


def status(
    app: App,
    *,
    service: str | None = None,
    min_healthy: int = DEFAULT_MIN_HEALTHY,
    output: OutputFormat = "table",
) -> ExitStatus:
    """Per-service counts and averages."""
    instances = read_fleet(app)
    summaries = summarize_services(instances, app.thresholds, min_healthy)
    if service is not None:
        name = resolve_service(service, services_of(instances))
        summaries = [summary for summary in summaries if summary.service == name]
    write_report(status_report(summaries, min_healthy), output, app.env)
    return ExitStatus.OK


def unhealthy_services(
    app: App, *, min_healthy: int = DEFAULT_MIN_HEALTHY, output: OutputFormat = "table"
) -> ExitStatus:
    """Services with fewer than `min_healthy` healthy instances; exit 1 when there are any."""
    instances = read_fleet(app)
    flagged = under_replicated(summarize_services(instances, app.thresholds, min_healthy))
    write_report(flagged_report(flagged, min_healthy), output, app.env)
    return ExitStatus.FLAGGED if flagged else ExitStatus.OK
