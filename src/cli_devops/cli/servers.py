"""The commands that serve until stopped: the Prometheus exporter and the bundled simulator."""

from __future__ import annotations

import click

from cli_devops.cli.options import CONNECTION, THRESHOLDS, GlobalValues, global_options
from cli_devops.errors import CannotListen, CannotWrite, ExitStatus
from cli_devops.hosts import host_problem
from cli_devops.lifecycle import ctrl_c_is_a_stop
from cli_devops.params import Number, Whole
from cli_devops.settings import (
    DEFAULT_EXPORTER_LISTEN,
    DEFAULT_LOG_FORMAT,
    DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_SHARD,
    DEFAULT_TELEMETRY_PATH,
    LOG_FORMATS,
    LOG_LEVELS,
)


@click.command()
@click.option("--web.listen-address", "--listen", "listen", multiple=True, metavar="HOST:PORT",
              help=f"Address to serve on; 0.0.0.0:PORT (or :PORT) for every interface. "
                   f"Repeat it for several.  [default: {DEFAULT_EXPORTER_LISTEN}]")  # fmt: skip
@click.option("--web.telemetry-path", "telemetry_path", default=DEFAULT_TELEMETRY_PATH,
              show_default=True, metavar="PATH", help="Path to serve the metrics on.")  # fmt: skip
@click.option("--web.max-requests", "max_requests", type=Whole(min=0),
              default=DEFAULT_MAX_REQUESTS, show_default=True, metavar="N",
              help="Scrapes answered at once; more get 503. 0 for no limit.")  # fmt: skip
@click.option("--web.disable-exporter-metrics", "no_exporter_metrics", is_flag=True,
              help="Leave out the exporter's own process_* metrics.")  # fmt: skip
@click.option("--web.config.file", "web_config", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="TLS and basic auth, in the Prometheus exporter toolkit's web configuration "
                   "format (as node_exporter's).")  # fmt: skip
@click.option("--log.level", "log_level", type=click.Choice(LOG_LEVELS),
              default=DEFAULT_LOG_LEVEL, show_default=True,
              help="Log events of this level or above (on stderr).")  # fmt: skip
@click.option("--log.format", "log_format", type=click.Choice(LOG_FORMATS),
              default=DEFAULT_LOG_FORMAT, show_default=True,
              help="One line per event, as logfmt or JSON.")  # fmt: skip
@click.option("--shard", default=DEFAULT_SHARD, show_default=True, metavar="K/N",
              help="Export only shard K of N of the fleet (a stable hash of the IP).")  # fmt: skip
@global_options(*CONNECTION, *THRESHOLDS)
def exporter(
    options: GlobalValues,
    listen: tuple[str, ...],
    telemetry_path: str,
    max_requests: int,
    no_exporter_metrics: bool,
    web_config: str | None,
    log_level: str,
    log_format: str,
    shard: str,
) -> int:
    """Serve the fleet as Prometheus metrics, read from CPX at every scrape."""
    from cli_devops.cli.make_config import make_run_config
    from cli_devops.exporter import ServeOptions, parse_addresses, run_exporter

    serve = ServeOptions(
        parse_addresses(listen),
        telemetry_path=telemetry_path,
        max_requests=max_requests,
        exporter_metrics=not no_exporter_metrics,
        log_level=log_level,
        log_format=log_format,
    )
    app = make_run_config(click.get_current_context(), options)
    return run_exporter(app, serve=serve, shard=shard, web_config=web_config)


def _check_host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A host the resolver can encode (hosts.host_problem), or a usage error naming it."""
    problem = host_problem(value) if value else None
    if problem:
        raise click.BadParameter(problem)
    return value


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, metavar="HOST",
              callback=_check_host, help="Address to listen on.")  # fmt: skip
@click.option("--port", type=Whole(0, 65535, metavar="PORT"), default=8081, show_default=True,
              help="Port to listen on; 0 picks a free one.")  # fmt: skip
@click.option("--fleet", "fleet_size", type=Whole(1, 1_000_000), default=150,
              show_default=True, help="Number of instances.")  # fmt: skip
@click.option("--seed", type=Whole(), help="Seed for a reproducible fleet.")
@click.option("--latency-ms", type=Number(min=0, max=3_600_000, metavar="MS"), default=0.0,
              show_default=True, help="Delay every answer by this much.")  # fmt: skip
@click.option("--fail-rate", type=Number(0, 1), default=0.0, metavar="P",
              help="Share of requests answered 503 or with a dropped connection.")  # fmt: skip
@click.option("--slow-rate", type=Number(0, 1), default=0.0, metavar="P",
              help="Share of requests whose body stalls for --slow-ms.")  # fmt: skip
@click.option("--slow-ms", type=Number(min=0, max=3_600_000, metavar="MS"), default=10_000.0,
              show_default=True, help="How long a slow answer stalls.")  # fmt: skip
@click.option("--chaos", is_flag=True,
              help="A quarter of the instances answer malformed, oversize or malicious "
                   "payloads, and /servers lists junk entries.")  # fmt: skip
@click.option("--reference", is_flag=True,
              help="Behave like the reference server: single-threaded HTTP/1.0, backlog 5, "
                   "its 150 instances, fresh random values per request.")  # fmt: skip
@click.option("--workers", type=Whole(min=1, max=256), metavar="N",
              help="Serve from N processes on the same port, to use N cores (Linux; "
                   "default 1; fault attempt counters are per process).")  # fmt: skip
@global_options()
def simulate(
    options: GlobalValues,
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
    from cli_devops.cli.make_config import make_environment
    from cli_devops.files import reason
    from cli_devops.simulator import WORKERS_SUPPORTED, serve
    from cli_devops.simulator.simulate import CannotAnnounce

    if workers is not None and reference:
        raise click.UsageError("--workers does not apply to --reference (it is single-threaded)")
    if workers is not None and workers > 1 and not WORKERS_SUPPORTED:
        raise click.UsageError("--workers above 1 needs Linux (SO_REUSEPORT)")
    env = make_environment(options)
    try:
        with ctrl_c_is_a_stop():  # exit 130
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
    except CannotAnnounce as failed:
        raise CannotWrite(f"cannot write to stdout: {reason(failed.args[0])}") from None
    except OSError as err:
        raise CannotListen(f"{host}:{port}", err) from None
    return ExitStatus.OK
