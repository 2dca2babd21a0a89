"""One object for a run: the environment, the health thresholds and the client settings.

Every command (the one-shot commands, `track`, `top`, the exporter) receives a `RunConfig`; none
of them imports another command's module to get it. `open_source` is the one place a
`FleetSource` is chosen (CPX, or Prometheus when `RunConfig.prometheus` is set); `read_fleet` is
the one read of the fleet the one-shot commands share, with what could not be read reported on
stderr.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cli_devops.environment import Environment
from cli_devops.errors import IncompleteData
from cli_devops.health import Thresholds
from cli_devops.model import Instance, InstanceList
from cli_devops.progress import ProgressLine
from cli_devops.settings import ClientSettings, PrometheusSettings
from cli_devops.text import plural, terminal_safe

if TYPE_CHECKING:
    from cli_devops.client import ReadProgress
    from cli_devops.model import Snapshot
    from cli_devops.sources.base import FleetSource


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


def open_source(
    config: RunConfig,
    *,
    watch: Callable[[ReadProgress], None] | None = None,
    since: float | None = None,
) -> FleetSource:
    """The fleet source `config` names, for `async with`: the one place a source is chosen.
    Prometheus when `config.prometheus` is set, else the CPX API (the simulator of `--demo` is
    one). `watch` is given the progress of a long read, by a source that measures it; `since`
    (a `time.monotonic()` value: the process's start, for a one-shot command) is when the
    settings' deadline of the CPX API's reads starts counting, else each read's start."""
    if config.prometheus is not None:
        from cli_devops.sources.prometheus import PrometheusSource

        return PrometheusSource(config.prometheus)
    from cli_devops.sources.cpx import CpxSource

    return CpxSource(config.settings, watch=watch, since=since)


def read_snapshot(config: RunConfig, *, progress: bool = False) -> Snapshot:
    """One read of the fleet from the source `config` names (blocking); `progress` allows a
    transient progress line on a terminal's stderr while a long read runs."""
    shown = None
    if progress and config.env.stderr_isatty and not config.debug:
        shown = ProgressLine(config.env)
    watch = shown.update if shown is not None else None
    source = open_source(config, watch=watch, since=config.env.started)
    read: list[Snapshot] = []

    async def run() -> None:
        async with source:
            read.append(await source.read())

    # The snapshot is handed out beside the task, not as its result: when asyncio.run() puts
    # back the SIGINT handler, Python formats the old handler, which names the finished task
    # and so the repr of its whole result (10,000 instances: 2% of a run).
    try:
        asyncio.run(run())
    finally:
        if shown is not None:
            shown.close()
    return read[0]


def read_fleet(app: RunConfig, *, progress: bool = False) -> Sequence[Instance]:
    """One snapshot of the fleet, with what could not be read reported on stderr; `progress`
    allows a transient progress line on a terminal's stderr while a long read runs."""
    snapshot = read_snapshot(app, progress=progress)
    for note in snapshot.notes:
        app.env.warn(note)
    unread = snapshot.unread
    report_unread(unread, len(snapshot.instances), app.env)
    if app.strict and unread:
        raise IncompleteData(f"{plural(len(unread), 'instance')} could not be read")
    return snapshot.instances


def report_unread(unread: Sequence[Instance], total: int, env: Environment) -> None:
    """One stderr line: how many instances could not be read, with the commonest reasons."""
    if not unread:
        return
    if isinstance(unread, InstanceList):  # a deadline's million unrequested: counted, not listed
        counted = unread.errors()
    else:
        counted = Counter(instance.error for instance in unread)
    reasons: Counter[str] = Counter()
    for error, count in counted.items():
        reasons[terminal_safe(error or "unknown")] += count
    top = reasons.most_common(3)
    listed = [f"{count} × {reason}" for reason, count in top]
    rest = len(unread) - sum(count for _, count in top)
    if rest:
        listed.append(f"{rest} for other reasons")
    of_total = f"{len(unread)} of {plural(total, 'instance')}"
    env.warn(f"{of_total} could not be read ({', '.join(listed)})")
