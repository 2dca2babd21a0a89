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
from cli_devops.errors import ApiUnreachable, ExitStatus
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
    """Poll until `count` polls are done; Ctrl+C ends the run normally (exit 0)."""
    try:
        asyncio.run(_poll_loop(app, service, interval, count, output))
    except KeyboardInterrupt:
        app.env.stdout.flush()
    return ExitStatus.OK


async def _poll_loop(
    app: App, service: str, interval: float, count: int | None, output: OutputFormat
) -> None:
    from cli_devops.client import CpxClient

    env = app.env
    name: str | None = None
    polls = 0
    async with CpxClient(app.client_settings()) as client:
        while count is None or polls < count:
            started = env.monotonic()
            moment = env.now()
            error: str | None = None
            members: list[Instance] = []
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
            polls += 1
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
        failed = f"  (poll failed: {poll.error})" if poll.error else ""
        env.stdout.write(f"{stamp}  {terminal_safe(poll.service)}{failed}\n")
        if not poll.error:
            write_table(instances_report(poll.members, app.thresholds), env)
        env.stdout.write("\n")
    env.stdout.flush()
