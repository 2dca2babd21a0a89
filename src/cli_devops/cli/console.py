"""The `top` command: the interactive fleet console."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import click

from cli_devops.cli.options import (
    CONNECTION,
    PROMETHEUS,
    THRESHOLDS,
    GlobalValues,
    global_options,
    min_healthy_option,
)
from cli_devops.params import Duration, Number, Whole
from cli_devops.settings import DEFAULT_HISTORY, DEFAULT_TOP_INTERVAL


@click.command()
@click.option("--interval", type=Duration(0.1, min_open=False), default=DEFAULT_TOP_INTERVAL,
              show_default=True, metavar="DURATION",
              help="Time between polls (seconds, or 500ms, 2s).")  # fmt: skip
@click.option("--history", type=Whole(1, 1000), default=DEFAULT_HISTORY,
              show_default=True, metavar="N",
              help="Samples kept per instance: sparklines and forecasts.")  # fmt: skip
@min_healthy_option
@click.option("--record", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append every poll to FILE (one JSON object per line).")  # fmt: skip
@click.option("--replay", type=click.Path(dir_okay=False), metavar="FILE",
              help="Play a recording back instead of reading the API.")  # fmt: skip
@click.option("--speed", type=Number(min=0.01, max=1000), metavar="X",
              help="Replay at X times the recorded pace [default: 1].")  # fmt: skip
@click.option("--all-contexts", is_flag=True,
              help="Every context of the config file on one screen.")  # fmt: skip
@global_options(*CONNECTION, *PROMETHEUS, *THRESHOLDS, "no_color", "at")
def top(
    options: GlobalValues,
    interval: float,
    history: int,
    min_healthy: int,
    record: str | None,
    replay: str | None,
    speed: float | None,
    all_contexts: bool,
) -> int:
    """Interactive console of the whole fleet: services worst first, drill down to instances,
    outliers and forecasts; q quits, ? shows the keys. Needs a terminal."""
    from cli_devops.cli.make_config import make_run_config
    from cli_devops.top import TopOptions
    from cli_devops.top import top as console

    if record and replay:
        raise click.UsageError("give --record or --replay, not both")
    if speed is not None and not replay:
        raise click.UsageError("--speed applies to --replay only")
    if all_contexts:
        for flag, given in (("--record", record), ("--replay", replay), ("--at", options["at"])):
            if given:
                raise click.UsageError(f"give {flag} or --all-contexts, not both")
    at = opening_moment(options, replay)
    if replay and options.given("at"):
        options = dataclasses.replace(options, values={**options.values, "at": None})
    contexts = []
    if all_contexts:
        from cli_devops.cli.make_config import make_run_configs

        contexts = make_run_configs(click.get_current_context(), options)
        app = contexts[0][1]
    else:
        app = make_run_config(click.get_current_context(), options)
    if app.prometheus is not None and app.prometheus.at is not None:
        # The console opens at that moment and travels from there; its polls read the present.
        at = at or datetime.fromtimestamp(app.prometheus.at, UTC)
        app = dataclasses.replace(app, prometheus=dataclasses.replace(app.prometheus, at=None))
    top_options = TopOptions(
        interval=interval,
        history=history,
        min_healthy=min_healthy,
        record=record,
        replay=replay,
        speed=speed or 1.0,
        at=at,
    )
    return console(app, top_options, contexts=contexts)


def opening_moment(options: GlobalValues, replay: str | None) -> datetime | None:
    """`--at` of a replay (an RFC 3339 instant of the recording); with Prometheus `make_run_config`
    reads it, and anywhere else it is refused."""
    from cli_devops.errors import UsageError

    text = options.values.get("at")
    if text is None:
        return None
    flag = options.given_as.get("at", "--at")
    if replay:
        from cli_devops.top.travel import parse_instant

        try:
            return parse_instant(text.strip())
        except UsageError as err:
            raise UsageError(f"{flag}: {err}") from None
    if not options.values.get("prometheus_url"):
        raise click.UsageError(f"{flag} needs --replay FILE or --prometheus-url")
    return None
