"""`wait`: the deploy gate. Poll until a service has enough healthy instances, steadily.

Health is `health.summarize_services`, the rule of every other command; an instance that could
not be read is not healthy (a gate errs on the side of waiting). The API being unreachable is
retried until the maximum wait. The outcome is an exit status: 0 ready, 1 the maximum wait
passed first, 3 the source stayed unreachable until then; a misspelt service name is a usage
error (2), while a name close to no known service is waited for (the deploy may be creating it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cli_devops.errors import ApiUnreachable, ExitStatus
from cli_devops.health import Status, summarize_services
from cli_devops.lifecycle import SIGINT, run_until_stopped
from cli_devops.model import Instance
from cli_devops.polling import Ticker
from cli_devops.run_config import RunConfig, open_source
from cli_devops.service_names import match_service, services_of
from cli_devops.settings import DEFAULT_MIN_HEALTHY
from cli_devops.text import terminal_safe

Outcome = Literal["ready", "timed_out", "unreachable", "interrupted"]
EXIT_STATUS: dict[Outcome, ExitStatus] = {
    "ready": ExitStatus.OK,
    "timed_out": ExitStatus.FLAGGED,
    "unreachable": ExitStatus.API_UNREACHABLE,
    "interrupted": ExitStatus.INTERRUPTED,
}


@dataclass(frozen=True)
class WaitOptions:
    service: str
    min_healthy: int = DEFAULT_MIN_HEALTHY
    stable: float = 0.0
    """Seconds the service must stay at `min_healthy` or more before the wait succeeds."""
    max_wait: float = 300.0
    interval: float = 2.0
    output: Literal["table", "json"] = "table"


@dataclass
class WaitState:
    """What the polls have seen so far; the progress line and the final record show it."""

    service: str
    healthy: int | None = None
    instances: int | None = None
    error: str | None = None
    error_kind: str = "connect"
    """What the last failure was (`ApiUnreachable.kind`), for the hint of the final error."""
    """Why the last poll failed (None once a poll succeeded)."""
    found: bool = False
    """Whether the service has been seen (under the API's spelling, `service`)."""
    good_since: float | None = None
    waited: float = 0.0
    outcome: Outcome | None = None


def wait(app: RunConfig, options: WaitOptions) -> int:
    """Block until ready, the maximum wait or a stop signal; the outcome as an exit status
    (Ctrl+C 130, SIGTERM or SIGHUP 128 + its number, as for the other interactive commands)."""
    state = WaitState(options.service)
    stopped = run_until_stopped(_wait(app, options, state))
    env = app.env
    if env.stdout_isatty and options.output == "table":
        env.stdout.write("\r\x1b[K")
        env.stdout.flush()
    if stopped is not None:
        state.outcome = "interrupted"
    assert state.outcome is not None
    if options.output == "json" and state.outcome != "interrupted":
        with env.writing_data():
            env.stdout.write(json.dumps(final_record(state, options)) + "\n")
    if state.outcome == "unreachable" and stopped is None:
        # the one error line (and its hint) comes from where every error is shown
        raise ApiUnreachable(final_line(state, options), kind=state.error_kind)
    env.warn(final_line(state, options))
    if stopped is not None and stopped != SIGINT:
        return 128 + stopped  # SIGTERM 143, SIGHUP 129, as a shell reports them
    return EXIT_STATUS[state.outcome]


def final_record(state: WaitState, options: WaitOptions) -> dict[str, object]:
    """The `-o json` object: the same fields whatever the outcome."""
    return {
        "service": state.service,
        "healthy": state.healthy,
        "min_healthy": options.min_healthy,
        "instances": state.instances,
        "stable_seconds": options.stable,
        "waited_seconds": round(state.waited, 3),
        "outcome": state.outcome,
        "error": state.error,
    }


def final_line(state: WaitState, options: WaitOptions) -> str:
    name = terminal_safe(state.service)
    waited = _seconds(state.waited)
    counts = _counts(state, options)
    if state.outcome == "ready":
        return f"{name} is ready: {counts} (waited {waited})"
    if state.outcome == "unreachable":
        return f"gave up after {waited}: {state.error}"
    if state.outcome == "interrupted":
        return f"interrupted after {waited}: {counts}"
    return f"gave up after {waited}: {counts}"


def progress_line(state: WaitState, options: WaitOptions, now: float) -> str:
    """The one line a terminal shows while waiting (and updates in place)."""
    name = terminal_safe(state.service)
    clock = f"{_seconds(state.waited)} of {_seconds(options.max_wait)}"
    if state.error is not None:
        return f"{name}: cannot read the fleet ({state.error}); retrying, {clock}"
    line = f"{name}: {_counts(state, options)}, {clock}"
    if state.good_since is not None and options.stable:
        line += f"; stable for {_seconds(now - state.good_since)} of {_seconds(options.stable)}"
    return line


def _counts(state: WaitState, options: WaitOptions) -> str:
    if state.healthy is None:
        return "not read yet"
    if not state.found or not state.instances:
        return "no instances yet"
    return f"{state.healthy} healthy of {state.instances} instances, {options.min_healthy} needed"


def _seconds(value: float) -> str:
    whole = max(0, round(value))
    minutes, seconds = divmod(whole, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


async def _wait(app: RunConfig, options: WaitOptions, state: WaitState) -> None:
    env = app.env
    clock = env.monotonic
    start = clock()
    deadline = start + options.max_wait
    ticker = Ticker(options.interval, clock)
    polled = False
    async with open_source(app) as source:
        while True:
            await asyncio.sleep(min(ticker.delay(), max(0.0, deadline - clock())))
            began = clock()
            try:
                snapshot = await asyncio.wait_for(source.read(), max(deadline - began, 0.05))
            except ApiUnreachable as err:
                state.error, state.good_since = str(err), None
                state.error_kind = err.kind
                polled = True
            except TimeoutError:
                if not polled:
                    state.error = "no answer before the maximum wait"
            else:
                polled = True
                state.error = None
                _count(state, options, app, snapshot.instances, began)
            now = clock()
            state.waited = now - start
            if state.good_since is not None and now - state.good_since >= options.stable:
                state.outcome = "ready"
                return
            if now >= deadline:
                state.outcome = "unreachable" if state.error is not None else "timed_out"
                return
            if env.stdout_isatty and options.output == "table":
                line = progress_line(state, options, now)[: max(env.width - 1, 10)]
                env.stdout.write(f"\r\x1b[K{line}")
                env.stdout.flush()


def _count(
    state: WaitState,
    options: WaitOptions,
    app: RunConfig,
    instances: Sequence[Instance],
    began: float,
) -> None:
    """Count the service's healthy instances in one read, and start or end the steady run."""
    if not state.found:
        first = state.healthy is None
        name = match_service(options.service, services_of(instances), suggest=first)
        if name is not None:
            state.service, state.found = name, True
    summaries = {
        summary.service: summary
        for summary in summarize_services(instances, app.thresholds, options.min_healthy)
    }
    summary = summaries.get(state.service) if state.found else None
    state.healthy = summary.healthy if summary else 0
    state.instances = summary.instances if summary else 0
    if summary is not None and summary.status is Status.HEALTHY:
        if state.good_since is None:
            state.good_since = began
    else:
        state.good_since = None
