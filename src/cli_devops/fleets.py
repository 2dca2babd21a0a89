"""Every context at once: `status --all-contexts` and `unhealthy-services --all-contexts`.

Contexts are read by a bounded pool (CONTEXT_WORKERS threads, each read with its own event loop
and its own deadline, so one slow environment does not hold up the others' reads), its report
gets a Context column, and a context that cannot be read is reported on stderr while the
others are shown. The exit status is 3 only when no context could be read.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from cli_devops.environment import Environment
from cli_devops.errors import ApiUnreachable, CliDevopsError, ExitStatus, IncompleteData
from cli_devops.health import ServiceSummary, Status, summarize_services, under_replicated
from cli_devops.model import Instance
from cli_devops.render import Output, Report, ReportColumn, write_report
from cli_devops.reports import flagged_report, status_report
from cli_devops.run_config import RunConfig, read_fleet
from cli_devops.service_names import resolve_service, services_of
from cli_devops.settings import DEFAULT_MIN_HEALTHY
from cli_devops.text import plural

CONTEXT_COLUMN = ReportColumn("context", "Context")
CONTEXT_WORKERS = 8
"""Contexts read at once: each read has its own connection pool and up to its concurrency in
flight, so more threads would add load, file descriptors and memory, not speed."""
DEFAULT_OUTPUT = Output()


class ContextReading(NamedTuple):
    """One context's read: its instances, or the error that stopped it."""

    name: str
    instances: Sequence[Instance] | None
    error: CliDevopsError | None
    app: RunConfig


def read_contexts(apps: Sequence[tuple[str, RunConfig]], env: Environment) -> list[ContextReading]:
    """Read every context's fleet at once; each one's stderr lines come out prefixed with its
    name, context by context (not interleaved), then the ones that failed."""

    def read(name: str, app: RunConfig) -> ContextReading:
        try:
            return ContextReading(name, read_fleet(app), None, app)
        except CliDevopsError as err:
            return ContextReading(name, None, err, app)

    quiet = [(name, dataclasses.replace(app, env=_buffered(app.env))) for name, app in apps]
    with ThreadPoolExecutor(max_workers=max(1, min(CONTEXT_WORKERS, len(quiet)))) as pool:
        readings = list(pool.map(lambda pair: read(*pair), quiet))
    for reading in readings:
        held = reading.app.env.stderr
        assert isinstance(held, io.StringIO)
        for line in held.getvalue().splitlines():
            env.warn(f"context {reading.name!r}: {line.removeprefix('cli_devops: ')}")
        if reading.error is not None:
            env.warn(f"context {reading.name!r}: {reading.error}")
    return readings


def _buffered(env: Environment) -> Environment:
    return dataclasses.replace(env, stderr=io.StringIO())


def _read(readings: list[ContextReading]) -> list[ContextReading]:
    """The contexts that were read; ApiUnreachable when none was."""
    read = [reading for reading in readings if reading.instances is not None]
    if not read:
        raise ApiUnreachable(
            f"none of the {plural(len(readings), 'context')} could be read", kind="contexts"
        )
    return read


def _exit(flagged: bool, readings: Sequence[ContextReading]) -> ExitStatus:
    if flagged:
        return ExitStatus.FLAGGED
    if any(isinstance(reading.error, IncompleteData) for reading in readings):
        return ExitStatus.INCOMPLETE
    return ExitStatus.OK


def _combined(reports: Sequence[tuple[str, Report]], footer: str, empty: str) -> Report:
    first = reports[0][1]
    records = [{"context": name, **record} for name, report in reports for record in report.records]
    return Report(
        records, ("context", *first.fields), (CONTEXT_COLUMN, *first.columns), footer, empty
    )


def status_all(
    apps: Sequence[tuple[str, RunConfig]],
    env: Environment,
    *,
    service: str | None = None,
    min_healthy: int = DEFAULT_MIN_HEALTHY,
    output: Output = DEFAULT_OUTPUT,
) -> ExitStatus:
    """`status` of every context, one table with a Context column: exit 1 when any context has
    a flagged service (a fleet-of-fleets view is a check, unlike one context's `status`), 4 with
    strict mode when a context was incomplete, 3 when none could be read."""
    readings = read_contexts(apps, env)
    reports = []
    summaries_seen: list[ServiceSummary] = []
    missing = None
    for reading in _read(readings):
        assert reading.instances is not None
        summaries = summarize_services(reading.instances, reading.app.thresholds, min_healthy)
        if service is not None:
            try:
                name = resolve_service(service, services_of(reading.instances))
            except CliDevopsError as err:
                missing = missing or err
                continue
            summaries = [summary for summary in summaries if summary.service == name]
        summaries_seen.extend(summaries)
        reports.append((reading.name, status_report(summaries, min_healthy)))
    if not reports and missing is not None:
        raise missing
    flagged = sum(1 for summary in summaries_seen if summary.status is Status.UNHEALTHY)
    footer = (
        f"{plural(len(reports), 'context')}, {plural(len(summaries_seen), 'service')}, "
        f"{flagged} with fewer than {plural(min_healthy, 'healthy instance')}"
    )
    report = _combined(reports, footer, "No services found.")
    write_report(report, output.format, env, headers=output.headers)
    return _exit(flagged > 0, readings)


def unhealthy_services_all(
    apps: Sequence[tuple[str, RunConfig]],
    env: Environment,
    *,
    min_healthy: int = DEFAULT_MIN_HEALTHY,
    output: Output = DEFAULT_OUTPUT,
) -> ExitStatus:
    """Under-replicated services of every context; exit 1 when any context has one."""
    readings = read_contexts(apps, env)
    reports = []
    total = 0
    for reading in _read(readings):
        assert reading.instances is not None
        summaries = summarize_services(reading.instances, reading.app.thresholds, min_healthy)
        flagged = under_replicated(summaries)
        total += len(flagged)
        reports.append((reading.name, flagged_report(flagged, min_healthy)))
    fewer = f"fewer than {plural(min_healthy, 'healthy instance')}"
    footer = f"{plural(total, 'service')} with {fewer} in {plural(len(reports), 'context')}"
    report = _combined(reports, footer, f"No service in any context has {fewer}.")
    if not total:
        report.footer = None
    write_report(report, output.format, env, headers=output.headers)
    return _exit(total > 0, readings)
