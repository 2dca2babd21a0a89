"""The commands that act on what they see: `wait` (a deploy gate) and `watch` (transitions, to
stdout, a command, a webhook or Alertmanager)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cli_devops.cli.completion import complete_services
from cli_devops.cli.options import FLEET_VIEW, GlobalValues, global_options, min_healthy_option
from cli_devops.durations import Duration

if TYPE_CHECKING:
    from cli_devops.watch.deliveries import Receivers

ACTING = tuple(name for name in FLEET_VIEW if name != "strict")
"""The fleet options of `wait` and `watch`: not --strict, as an unread instance is already
not healthy (wait) or keeps its last state (watch)."""


@click.command()
@click.option("--service", metavar="NAME", required=True, shell_complete=complete_services,
              help="The service to wait for (it may not exist yet).")  # fmt: skip
@min_healthy_option
@click.option("--stable", type=Duration(0.0, min_open=False), default="0s", show_default=True,
              metavar="DURATION",
              help="How long the service must stay at --min-healthy or more.")  # fmt: skip
@click.option("--max-wait", type=Duration(0.0, min_open=False), default="5m",
              show_default=True, metavar="DURATION",
              help="Give up after this long (exit 1; 3 if the API could not be read).")  # fmt: skip
@click.option("--interval", type=Duration(0.1, min_open=False), default="2s", show_default=True,
              metavar="DURATION", help="Time between polls.")  # fmt: skip
@click.option("-o", "--output", type=click.Choice(["table", "json"], case_sensitive=False),
              default="table", show_default=True,
              help="json: one final object on stdout (also when giving up).")  # fmt: skip
@global_options(*ACTING)
def wait(
    options: GlobalValues,
    service: str,
    min_healthy: int,
    stable: float,
    max_wait: float,
    interval: float,
    output: Any,
) -> int:
    """Wait until the service has --min-healthy healthy instances (for --stable): a deploy gate.

    Exit 0 when ready, 1 when --max-wait passed first, 3 when the API stayed unreachable,
    130 when stopped by Ctrl+C or SIGTERM.
    """
    from cli_devops import wait as waiting
    from cli_devops.cli.make_config import make_run_config

    if stable > max_wait:
        raise click.UsageError("--stable is longer than --max-wait: the wait could never pass")
    app = make_run_config(click.get_current_context(), options)
    wait_options = waiting.WaitOptions(
        service=service,
        min_healthy=min_healthy,
        stable=stable,
        max_wait=max_wait,
        interval=interval,
        output=output.lower(),
    )
    return waiting.wait(app, wait_options)


@click.command()
@click.option("--service", metavar="NAME", shell_complete=complete_services,
              help="Only this service [default: every service].")  # fmt: skip
@min_healthy_option
@click.option("--for", "hold", type=Duration(0.0, min_open=False), default="0s",
              show_default=True, metavar="DURATION",
              help="Report a condition only once it has lasted this long.")  # fmt: skip
@click.option("--interval", type=Duration(0.1, min_open=False), default="5s", show_default=True,
              metavar="DURATION", help="Time between polls.")  # fmt: skip
@click.option("--exec", "command", metavar="CMD",
              help="Run CMD for each event, the event's JSON on its stdin.")  # fmt: skip
@click.option("--webhook", metavar="URL",
              help="POST each event's JSON here, signed with --webhook-secret-file.")  # fmt: skip
@click.option("--webhook-secret-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="The HMAC-SHA256 key of the webhook's signature (a private file).")  # fmt: skip
@click.option("--alertmanager", metavar="URL",
              help="Post alerts to this Alertmanager (its base URL).")  # fmt: skip
@global_options(*ACTING)
def watch(
    options: GlobalValues,
    service: str | None,
    min_healthy: int,
    hold: float,
    interval: float,
    command: str | None,
    webhook: str | None,
    webhook_secret_file: str | None,
    alertmanager: str | None,
) -> int:
    """Print each change of health as a JSON line (and deliver it) until Ctrl+C or SIGTERM.

    Events: service_under_replicated, service_recovered, instance_unhealthy,
    instance_recovered, source_unreachable, source_recovered.
    """
    from cli_devops import watch as watching
    from cli_devops.cli.make_config import make_run_config

    receivers = _receivers(command, webhook, webhook_secret_file, alertmanager)
    app = make_run_config(click.get_current_context(), options)
    watch_options = watching.WatchOptions(
        service=service, min_healthy=min_healthy, hold=hold, interval=interval,
        receivers=receivers,
    )  # fmt: skip
    return watching.watch(app, watch_options)


def _receivers(
    command: str | None,
    webhook: str | None,
    secret_file: str | None,
    alertmanager: str | None,
) -> Receivers:
    import shlex
    import shutil
    from pathlib import Path

    from cli_devops.errors import UsageError
    from cli_devops.watch.deliveries import Receivers

    argv: list[str] | None = None
    if command is not None:
        try:
            argv = shlex.split(command)
        except ValueError as err:
            raise click.UsageError(f"--exec: {err}") from None
        if not argv:
            raise click.UsageError("--exec: give a command")
        if shutil.which(argv[0]) is None:
            raise click.UsageError(f"--exec: command not found: {argv[0]}")
    if webhook is not None and secret_file is None:
        raise click.UsageError("--webhook needs --webhook-secret-file (the signature's key)")
    if secret_file is not None and webhook is None:
        raise click.UsageError("--webhook-secret-file needs --webhook")
    hook = manager = None
    try:
        if webhook is not None and secret_file is not None:
            from cli_devops.watch.posting import Target
            from cli_devops.watch.webhook import Webhook, read_secret

            hook = Webhook(Target(webhook, "--webhook"), read_secret(Path(secret_file)))
        if alertmanager is not None:
            from cli_devops.watch.alertmanager import Alertmanager
            from cli_devops.watch.posting import Target

            manager = Alertmanager(Target(alertmanager, "--alertmanager"))
    except UsageError as err:
        raise UsageError(str(err)) from None
    from urllib.request import getproxies_environment

    return Receivers(
        command=argv, webhook=hook, alertmanager=manager, proxies=getproxies_environment()
    )
