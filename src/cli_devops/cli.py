"""Command-line adapter: parse options, build an `App`, call the command function.

No business logic lives here. `main` is the single place where errors become a message on
stderr and an exit code; a traceback is shown only with --debug.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import click

from cli_devops import __version__
from cli_devops.errors import CliDevopsError, ExitStatus
from cli_devops.health import DEFAULT_MIN_HEALTHY, DEFAULT_THRESHOLD, Thresholds

if TYPE_CHECKING:  # imported where used: `--help` pays only for what it shows
    from cli_devops.environment import Environment

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "http://localhost:8081"
DEMO_SEED = 7


class _RunState:
    """What `main` needs to know after parsing, even when parsing or the command failed."""

    debug = False


_state = _RunState()

PERCENT = click.FloatRange(0, 100)


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        show_default=True,
        help="Output format; json and csv are for scripts (see README for the fields).",
    )(func)


def min_healthy_option(func: F) -> F:
    return click.option(
        "--min-healthy",
        type=click.IntRange(min=1),
        default=DEFAULT_MIN_HEALTHY,
        show_default=True,
        help="A service with fewer healthy instances than this is flagged.",
    )(func)


def _check_token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An empty token is no token; anything but visible ASCII cannot go in a header.

    The value is never repeated in the error: it is a secret.
    """
    if not value:
        return None
    if not all("!" <= char <= "~" for char in value):
        raise click.BadParameter("must be visible ASCII characters only (no spaces)")
    return value


class _Group(click.Group):
    """A command group that also answers to the aliases in ALIASES (not listed in --help)."""

    ALIASES: ClassVar[dict[str, str]] = {"service-track": "track"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--cp-url",
    envvar="CPX_URL",
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help="Base URL of the CPX API (env CPX_URL); host:port and [IPv6]:port are accepted.",
)
@click.option("--cpu-threshold", type=PERCENT, default=DEFAULT_THRESHOLD, show_default=True,
              metavar="PCT", help="An instance above this CPU % is Unhealthy.")  # fmt: skip
@click.option("--mem-threshold", type=PERCENT, default=DEFAULT_THRESHOLD, show_default=True,
              metavar="PCT", help="An instance above this memory % is Unhealthy.")  # fmt: skip
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Timeout of each attempt of an API request, connect and read together.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=1024),
    default=None,
    metavar="N",
    help="Requests in flight at once [default: adapts to the API].",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=3,
    show_default=True,
    metavar="N",
    help="Retries of a request that failed in a way that may pass (timeout, 5xx, 429, reset).",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up on what is still unread after this long (per poll or scrape).",
)
@click.option("--strict", is_flag=True, help="Exit 4 when any instance could not be read.")
@click.option(
    "--token",
    envvar="CPX_TOKEN",
    metavar="TOKEN",
    callback=_check_token,
    help="Bearer token for the CPX API (env CPX_TOKEN, preferred); never printed.",
)
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="Trust the CA certificates in this PEM file for https:// URLs.",
)
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (testing only).")
@click.option("--demo", is_flag=True, help="Use the bundled CPX simulator; no server needed.")
@click.option("--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
@click.option("--debug", is_flag=True, help="Log requests and show tracebacks on stderr.")
@click.version_option(__version__, "--version", prog_name="cli_devops")
@click.pass_context
def cli(
    ctx: click.Context,
    cp_url: str,
    cpu_threshold: float,
    mem_threshold: float,
    timeout: float,
    concurrency: int | None,
    retries: int,
    deadline: float | None,
    strict: bool,
    token: str | None,
    ca_cert: str | None,
    insecure: bool,
    demo: bool,
    no_color: bool,
    debug: bool,
) -> None:
    """See the health of your CPX fleet: instances, services, under-replicated services,
    and one service over time.

    \b
    Try it without a server:
      cli_devops --demo services
      cli_devops --demo unhealthy-services
    """
    from cli_devops.environment import Environment

    _state.debug = debug
    env = Environment.from_system(no_color=no_color)
    if ctx.invoked_subcommand == "simulate":
        ctx.obj = env
        return
    from cli_devops.client import normalize_base_url
    from cli_devops.commands import App

    base_url = normalize_base_url(cp_url)
    if ca_cert and insecure:
        raise click.UsageError("give --ca-cert or --insecure, not both")
    if insecure:
        env.warn("--insecure: TLS certificates are not verified")
    if demo:
        base_url = _start_demo(ctx)
    ctx.obj = App(
        base_url=base_url,
        thresholds=Thresholds(cpu=cpu_threshold, memory=mem_threshold),
        timeout=timeout,
        concurrency=concurrency,
        strict=strict,
        debug=debug,
        env=env,
        retries=retries,
        deadline=deadline,
        token=token,
        ca_cert=ca_cert,
        insecure=insecure,
    )


def _start_demo(ctx: click.Context) -> str:
    from cli_devops.simulator import Fleet, SimulatorServer

    server = SimulatorServer(Fleet.generate(150, seed=DEMO_SEED))
    url = server.start()
    ctx.call_on_close(server.stop)
    return url


@cli.command()
@click.option("--service", metavar="NAME", help="Only instances of this service.")
@click.option("--status", type=click.Choice(["healthy", "unhealthy", "unknown"],
              case_sensitive=False), help="Only instances with this status.")  # fmt: skip
@click.option(
    "--sort",
    type=click.Choice(["ip", "service", "status", "cpu", "memory"]),
    default="ip",
    show_default=True,
    help="Row order; cpu and memory put the busiest first.",
)
@output_option
@click.pass_obj
def services(app: Any, service: str | None, status: str | None, sort: str, output: Any) -> int:
    """List running instances: IP, service, status, CPU and memory."""
    from cli_devops import commands

    return commands.services(app, service=service, status=status, sort=sort, output=output)


@cli.command()
@click.option("--service", metavar="NAME", help="Only this service.")
@min_healthy_option
@output_option
@click.pass_obj
def status(app: Any, service: str | None, min_healthy: int, output: Any) -> int:
    """Average CPU and memory per service, with healthy/unhealthy/unknown counts."""
    from cli_devops import commands

    return commands.status(app, service=service, min_healthy=min_healthy, output=output)


@cli.command("unhealthy-services")
@min_healthy_option
@output_option
@click.pass_obj
def unhealthy_services(app: Any, min_healthy: int, output: Any) -> int:
    """Services with fewer than --min-healthy healthy instances (exit 1 if any)."""
    from cli_devops import commands

    return commands.unhealthy_services(app, min_healthy=min_healthy, output=output)


@cli.command()
@click.argument("service_arg", metavar="SERVICE", required=False)
@click.option("--service", metavar="NAME", help="The service to track (or give it as SERVICE).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=3.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between polls.",
)
@click.option("--count", type=click.IntRange(min=1), metavar="N", help="Stop after N polls.")
@click.option(
    "--history",
    type=click.IntRange(1, 1000),
    default=30,
    show_default=True,
    metavar="N",
    help="Samples in each sparkline of the live view.",
)
@min_healthy_option
@output_option
@click.pass_obj
def track(
    app: Any,
    service_arg: str | None,
    service: str | None,
    interval: float,
    count: int | None,
    history: int,
    min_healthy: int,
    output: Any,
) -> int:
    """Follow CPU and memory of every instance of SERVICE until Ctrl+C.

    On a terminal: a live view with trends, then a summary. Piped or with -o json/csv: one
    record per poll. Also available as `service-track`.
    """
    from cli_devops import track as tracking

    name = service_arg or service
    if not name:
        raise click.UsageError("give the service to track: cli_devops track SERVICE")
    if service_arg and service and service_arg != service:
        raise click.UsageError("give the service once, as SERVICE or --service")
    options = tracking.TrackOptions(
        interval=interval, count=count, history=history, min_healthy=min_healthy, output=output
    )
    return tracking.track(app, name, options)


@cli.command()
@click.option("--listen", default="127.0.0.1:8095", show_default=True, metavar="HOST:PORT",
              help="Address to serve on; 0.0.0.0:PORT (or :PORT) for every interface.")  # fmt: skip
@click.option("--shard", default="0/1", show_default=True, metavar="K/N",
              help="Export only shard K of N of the fleet (a stable hash of the IP).")  # fmt: skip
@click.pass_obj
def exporter(app: Any, listen: str, shard: str) -> int:
    """Serve the fleet as Prometheus metrics, read from CPX at every scrape."""
    from cli_devops.exporter import run_exporter

    return run_exporter(app, listen=listen, shard=shard)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8081, show_default=True)
@click.option("--fleet", "fleet_size", type=click.IntRange(1, 1_000_000), default=150,
              show_default=True, help="Number of instances.")  # fmt: skip
@click.option("--seed", type=int, help="Seed for a reproducible fleet.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Delay every answer by this much.")  # fmt: skip
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, metavar="P",
              help="Share of requests answered 503 or with a dropped connection.")  # fmt: skip
@click.option("--slow-rate", type=click.FloatRange(0, 1), default=0.0, metavar="P",
              help="Share of requests whose body stalls for --slow-ms.")  # fmt: skip
@click.option("--slow-ms", type=click.FloatRange(min=0), default=10_000.0, show_default=True,
              help="How long a slow answer stalls.")  # fmt: skip
@click.option("--chaos", is_flag=True,
              help="A quarter of the instances answer malformed, oversize or malicious "
                   "payloads, and /servers lists junk entries.")  # fmt: skip
@click.option("--reference", is_flag=True,
              help="Behave like the reference server: single-threaded HTTP/1.0, backlog 5, "
                   "150 instances, fresh random values per request.")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Serve from N processes on the same port, to use N cores (Linux; "
                   "default 1; fault attempt counters are per process).")  # fmt: skip
@click.pass_obj
def simulate(
    env: Environment,
    host: str,
    port: int,
    fleet_size: int,
    seed: int | None,
    latency_ms: float,
    fail_rate: float,
    slow_rate: float,
    slow_ms: float,
    chaos: bool,
    reference: bool,
    workers: int | None,
) -> int:
    """Run the bundled CPX simulator (the same API as CPX) until Ctrl+C."""
    from cli_devops.simulator import WORKERS_SUPPORTED, serve

    if workers is not None and reference:
        raise click.UsageError("--workers does not apply to --reference (it is single-threaded)")
    if workers is not None and workers > 1 and not WORKERS_SUPPORTED:
        raise click.UsageError("--workers above 1 needs Linux (SO_REUSEPORT)")
    try:
        serve(
            host=host,
            port=port,
            fleet_size=fleet_size,
            seed=seed,
            reference=reference,
            latency_ms=latency_ms,
            out=env.stdout,
            fail_rate=fail_rate,
            slow_rate=slow_rate,
            slow_ms=slow_ms,
            chaos=chaos,
            workers=workers or 1,
        )
    except OSError as err:
        raise click.UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return ExitStatus.OK


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and map every outcome to an exit code."""
    # Each API request allocates many short-lived objects that reference counting frees; the
    # cyclic collector's default pace (a pass every 700 allocations) cost 8% of a 10,000-instance
    # run. A process-wide policy, so it is set here, not in the library.
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    status = run(argv)
    # Nothing is left to collect: the interpreter's final full collection would still walk
    # every object of a large fleet (18 ms of a 10,000-instance run) before exiting.
    gc.freeze()
    sys.exit(status)


def run(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="cli_devops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return ExitStatus.INTERRUPTED
    except click.ClickException as err:
        err.show()
        return ExitStatus.USAGE
    except CliDevopsError as err:
        _fail(str(err))
        return err.exit_status
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitStatus.OK
    except Exception as err:  # the one catch-all: the user gets a line, not a traceback
        _fail(f"unexpected error: {type(err).__name__}: {err} (rerun with --debug for details)")
        return ExitStatus.INTERNAL_ERROR
    if isinstance(result, int):
        return result
    return ExitStatus.OK


def _fail(message: str) -> None:
    from cli_devops.render import terminal_safe

    if _state.debug:
        import traceback

        traceback.print_exc()
    click.echo(f"cli_devops: error: {terminal_safe(message)}", err=True)


def _silence_stdout() -> None:
    """After the reader of a pipe went away, stop Python from failing again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
