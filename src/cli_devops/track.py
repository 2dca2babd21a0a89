"""`track`: poll one service's instances every interval until Ctrl+C (or --count polls).

Each poll becomes one record: `-o json` writes one JSON object per line (NDJSON), `-o csv` one
row per instance with a `time` column, the table format a timestamped table per poll.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import NamedTuple

from cli_devops.commands import App, report_unread, resolve_service
from cli_devops.errors import ApiUnreachable, ExitStatus, IncompleteData
from cli_devops.model import Instance
from cli_devops.render import (
    INSTANCE_FIELDS,
    OutputFormat,
    instance_record,
    instances_report,
    terminal_safe,
    write_csv,
    write_table,
)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def next_delay(started: float, now: float, interval: float) -> float:
    """Seconds to sleep so polls start every `interval` seconds, whatever a poll took."""
    return max(0.0, started + interval - now)


def track(
    app: App,
    service: str,
    *,
    interval: float = 3.0,
    count: int | None = None,
    output: OutputFormat = "table",
) -> ExitStatus:
    """Poll until `count` polls are done; Ctrl+C ends the run normally (exit 0).

    With `app.strict`, a run in which any poll failed or missed an instance raises
    IncompleteData at the end (exit 4), whether it ended by --count or Ctrl+C.
    """
    progress = _Progress(count)
    try:
        asyncio.run(_poll_loop(app, service, interval, output, progress))
    except KeyboardInterrupt:
        app.env.stdout.flush()
    if app.strict and progress.incomplete:
        raise IncompleteData(
            f"{progress.incomplete} of {progress.polls} polls were incomplete "
            "and --strict was given"
        )
    return ExitStatus.OK


class _Progress:
    """How many polls to make (None: until Ctrl+C), made, and failed or missing an instance;
    kept outside the loop so that it survives Ctrl+C."""

    def __init__(self, count: int | None) -> None:
        self.count = count
        self.polls = 0
        self.incomplete = 0


async def _poll_loop(
    app: App,
    service: str,
    interval: float,
    output: OutputFormat,
    progress: _Progress,
) -> None:
    from cli_devops.client import CpxClient

    env = app.env
    name: str | None = None
    count = progress.count
    polls = 0
    async with CpxClient(app.client_settings()) as client:
        while count is None or polls < count:
            started = env.monotonic()
            moment = env.now()
            error: str | None = None
            members: list[Instance] = []
            complete = False
            try:
                snapshot = await client.snapshot()
            except ApiUnreachable as err:
                error = str(err)
                env.warn(error)
            else:
                if name is None:
                    name = resolve_service(
                        service, {i.service for i in snapshot.instances if i.service}
                    )
                members = [i for i in snapshot.instances if i.service == name]
                report_unread(snapshot.unread, len(snapshot.instances), env)
                complete = not snapshot.unread
            polls += 1
            progress.polls = polls
            if not complete:
                progress.incomplete += 1
            poll = Poll(moment, name or service, members, error)
            _emit(app, poll, output, first=polls == 1)
            if count is not None and polls >= count:
                break
            await asyncio.sleep(next_delay(started, env.monotonic(), interval))


class Poll(NamedTuple):
    moment: datetime
    service: str
    members: list[Instance]
    error: str | None


def _emit(app: App, poll: Poll, output: OutputFormat, *, first: bool) -> None:
    env = app.env
    stamp = rfc3339(poll.moment)
    records = [instance_record(instance, app.thresholds) for instance in poll.members]
    if output == "json":
        line = {"time": stamp, "service": poll.service, "instances": records, "error": poll.error}
        env.stdout.write(json.dumps(line) + "\n")
    elif output == "csv":
        rows = [{"time": stamp, **record} for record in records]
        write_csv(rows, ("time", *INSTANCE_FIELDS), env, header=first)
    else:
        failed = f"  (poll failed: {terminal_safe(poll.error)})" if poll.error else ""
        env.stdout.write(f"{stamp}  {terminal_safe(poll.service)}{failed}\n")
        if not poll.error:
            write_table(instances_report(poll.members, app.thresholds), env)
        env.stdout.write("\n")
    env.stdout.flush()
