"""The commands that act on what they see: `wait` (a deploy gate) and `watch` (transitions, to
stdout, a command, a webhook or Alertmanager)."""

from __future__ import annotations

from typing import Any

import click

from cli_devops.cli.completion import complete_services
from cli_devops.cli.options import FLEET_VIEW, GlobalValues, global_options, min_healthy_option
from cli_devops.durations import Duration


@click.command()
@click.option("--service", metavar="NAME", required=True, shell_complete=complete_services,
              help="The service to wait for (it may not exist yet).")  # fmt: skip
@min_healthy_option
@click.option("--stable", type=Duration(0.0, min_open=False), default=0.0, show_default=True,
              metavar="DURATION",
              help="How long the service must stay at --min-healthy or more.")  # fmt: skip
@click.option("--max-wait", type=Duration(0.0, min_open=False), default=300.0,
              show_default=True, metavar="DURATION",
              help="Give up after this long (exit 1; 3 if the API could not be read).")  # fmt: skip
@click.option("--interval", type=Duration(0.1, min_open=False), default=2.0, show_default=True,
              metavar="DURATION", help="Time between polls.")  # fmt: skip
@click.option("-o", "--output", type=click.Choice(["table", "json"], case_sensitive=False),
              default="table", show_default=True,
              help="json: one final object on stdout (also when giving up).")  # fmt: skip
@global_options(*FLEET_VIEW)
def wait(
    options: GlobalValues,
    service: str,
    min_healthy: int,
    stable: float,
    max_wait: float,
    interval: float,
    output: Any,
) -> int:
    """Wait until SERVICE has --min-healthy healthy instances (for --stable): a deploy gate.

    Exit 0 when ready, 1 when --max-wait passed first, 3 when the API stayed unreachable.
    """
    from cli_devops import wait as waiting
    from cli_devops.cli.make_app import make_app

    app = make_app(click.get_current_context(), options)
    wait_options = waiting.WaitOptions(
        service=service,
        min_healthy=min_healthy,
        stable=stable,
        max_wait=max_wait,
        interval=interval,
        output=output.lower(),
    )
    return waiting.wait(app, wait_options)
