"""The commands that read the fleet and show it: services, status, unhealthy-services, track."""

from __future__ import annotations

from typing import Any

import click

from cli_devops.cli.completion import complete_services
from cli_devops.cli.options import (
    FLEET_VIEW,
    ONE_SHOT,
    GlobalValues,
    global_options,
    min_healthy_option,
    output_options,
)
from cli_devops.params import Duration, Whole
from cli_devops.settings import DEFAULT_HISTORY, DEFAULT_TRACK_INTERVAL


@click.command()
@click.option("--service", metavar="NAME", shell_complete=complete_services,
              help="Only instances of this service.")  # fmt: skip
@click.option("--status", type=click.Choice(["healthy", "unhealthy", "unknown"],
              case_sensitive=False), help="Only instances with this status.")  # fmt: skip
@click.option(
    "--sort",
    type=click.Choice(["ip", "service", "status", "cpu", "memory"], case_sensitive=False),
    default="ip",
    show_default=True,
    help="Row order; cpu and memory put the busiest first.",
)
@output_options
@global_options(*ONE_SHOT)
def services(
    options: GlobalValues,
    service: str | None,
    status: str | None,
    sort: str,
    output: Any,
    no_headers: bool,
) -> int:
    """List running instances: IP, service, status, CPU and memory."""
    from cli_devops import commands
    from cli_devops.cli.make_config import make_run_config
    from cli_devops.render import Output

    app = make_run_config(click.get_current_context(), options)
    return commands.services(
        app, service=service, status=status, sort=sort, output=Output(output, not no_headers)
    )


ALL_CONTEXTS_HELP = "Every context of the config file at once, with a Context column."


@click.command()
@click.option("--service", metavar="NAME", shell_complete=complete_services,
              help="Only this service.")  # fmt: skip
@click.option("--all-contexts", is_flag=True, help=ALL_CONTEXTS_HELP)
@min_healthy_option
@output_options
@global_options(*ONE_SHOT)
def status(
    options: GlobalValues,
    service: str | None,
    all_contexts: bool,
    min_healthy: int,
    output: Any,
    no_headers: bool,
) -> int:
    """Average CPU and memory per service, with healthy/unhealthy/unknown counts."""
    from cli_devops import commands
    from cli_devops.cli.make_config import make_run_config
    from cli_devops.render import Output

    ctx = click.get_current_context()
    if all_contexts:
        from cli_devops import fleets
        from cli_devops.cli.make_config import make_environment, make_run_configs

        return fleets.status_all(
            make_run_configs(ctx, options), make_environment(options), service=service,
            min_healthy=min_healthy, output=Output(output, not no_headers),
        )  # fmt: skip
    app = make_run_config(ctx, options)
    return commands.status(
        app, service=service, min_healthy=min_healthy, output=Output(output, not no_headers)
    )


@click.command("unhealthy-services")
@click.option("--all-contexts", is_flag=True, help=ALL_CONTEXTS_HELP)
@min_healthy_option
@output_options
@global_options(*ONE_SHOT)
def unhealthy_services(
    options: GlobalValues, all_contexts: bool, min_healthy: int, output: Any, no_headers: bool
) -> int:
    """Services with fewer than --min-healthy healthy instances (exit 1 if any)."""
    from cli_devops import commands
    from cli_devops.cli.make_config import make_run_config
    from cli_devops.render import Output

    ctx = click.get_current_context()
    if all_contexts:
        from cli_devops import fleets
        from cli_devops.cli.make_config import make_environment, make_run_configs

        return fleets.unhealthy_services_all(
            make_run_configs(ctx, options), make_environment(options), min_healthy=min_healthy,
            output=Output(output, not no_headers),
        )  # fmt: skip
    app = make_run_config(ctx, options)
    return commands.unhealthy_services(
        app, min_healthy=min_healthy, output=Output(output, not no_headers)
    )


@click.command()
@click.argument("service_arg", metavar="SERVICE", required=False, shell_complete=complete_services)
@click.option("--service", metavar="NAME", shell_complete=complete_services,
              help="The service to track (or give it as SERVICE).")  # fmt: skip
@click.option(
    "--interval",
    type=Duration(0.1, min_open=False),
    default=DEFAULT_TRACK_INTERVAL,
    show_default=True,
    metavar="DURATION",
    help="Time between polls (seconds, or 500ms, 2s, 1m).",
)
@click.option("--count", type=Whole(min=1), metavar="N", help="Stop after N polls.")
@click.option(
    "--history",
    type=Whole(1, 1000),
    default=DEFAULT_HISTORY,
    show_default=True,
    metavar="N",
    help="Samples in each sparkline of the live view.",
)
@min_healthy_option
@output_options
@global_options(*FLEET_VIEW)
def track(
    options: GlobalValues,
    service_arg: str | None,
    service: str | None,
    interval: float,
    count: int | None,
    history: int,
    min_healthy: int,
    output: Any,
    no_headers: bool,
) -> int:
    """Follow CPU and memory of every instance of SERVICE until Ctrl+C (or q).

    On a terminal: a live view with trends, then a summary. Piped or with -o json/csv: one
    record per poll. Also available as `service-track`.
    """
    from cli_devops import track as tracking
    from cli_devops.cli.make_config import make_run_config

    name = service_arg or service
    if not name:
        raise click.UsageError("give the service to track: cli_devops track SERVICE")
    if service_arg and service and service_arg != service:
        raise click.UsageError("give the service once, as SERVICE or --service")
    app = make_run_config(click.get_current_context(), options)
    track_options = tracking.TrackOptions(
        interval=interval,
        count=count,
        history=history,
        min_healthy=min_healthy,
        output=output,
        headers=not no_headers,
    )
    return tracking.track(app, name, track_options)
