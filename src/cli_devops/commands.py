"""The one-shot commands as typed functions: plain values in, output written, exit status out.

`cli` only parses options and calls these; everything here is callable from Python too.
"""

from __future__ import annotations

from collections.abc import Callable

from cli_devops.errors import ExitStatus
from cli_devops.health import (
    Thresholds,
    instance_status,
    outliers,
    summarize_services,
    under_replicated,
)
from cli_devops.model import Instance, ip_sort_key
from cli_devops.render import Output, write_report
from cli_devops.reports import flagged_report, instances_report, status_report
from cli_devops.run_config import RunConfig, read_fleet
from cli_devops.service_names import resolve_service, services_of
from cli_devops.settings import DEFAULT_MIN_HEALTHY

DEFAULT_OUTPUT = Output()


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
    app: RunConfig,
    *,
    service: str | None = None,
    status: str | None = None,
    sort: str = "ip",
    output: Output = DEFAULT_OUTPUT,
) -> ExitStatus:
    """List instances (numeric IP order by default; cpu/memory sort the busiest first)."""
    instances = read_fleet(app, progress=output.format == "table")
    flagged = outliers(instances)
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
    with app.env.writing_data():
        write_report(
            instances_report(instances, app.thresholds, flagged),
            output.format,
            app.env,
            headers=output.headers,
        )
    return ExitStatus.OK


def status(
    app: RunConfig,
    *,
    service: str | None = None,
    min_healthy: int = DEFAULT_MIN_HEALTHY,
    output: Output = DEFAULT_OUTPUT,
) -> ExitStatus:
    """Per-service counts and averages."""
    instances = read_fleet(app, progress=output.format == "table")
    summaries = summarize_services(instances, app.thresholds, min_healthy)
    if service is not None:
        name = resolve_service(service, services_of(instances))
        summaries = [summary for summary in summaries if summary.service == name]
    with app.env.writing_data():
        write_report(
            status_report(summaries, min_healthy), output.format, app.env, headers=output.headers
        )
    return ExitStatus.OK


def unhealthy_services(
    app: RunConfig,
    *,
    min_healthy: int = DEFAULT_MIN_HEALTHY,
    output: Output = DEFAULT_OUTPUT,
) -> ExitStatus:
    """Services with fewer than `min_healthy` healthy instances; exit 1 when there are any."""
    instances = read_fleet(app, progress=output.format == "table")
    flagged = under_replicated(summarize_services(instances, app.thresholds, min_healthy))
    with app.env.writing_data():
        write_report(
            flagged_report(flagged, min_healthy), output.format, app.env, headers=output.headers
        )
    return ExitStatus.FLAGGED if flagged else ExitStatus.OK
