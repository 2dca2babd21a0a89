"""From merged global options to the `RunConfig` a command runs with.

The only place that knows both the option names and the library's settings: library errors come
back here in the library's words, and the flag or variable the user actually gave is named.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import click

from cli_devops.cli.options import RUN, GlobalValues
from cli_devops.environment import Environment
from cli_devops.errors import UsageError
from cli_devops.health import Thresholds
from cli_devops.run_config import RunConfig
from cli_devops.settings import DEFAULT_QUERY_TIMEOUT, ClientSettings, PrometheusSettings

DEMO_SEED = 7
DEMO_FLEET = 150
DEMO_FLAP = (10.0, 20.0, 60.0)
"""The demo's flapping service: under-replicated 10 s after the start, for 20 s, every minute,
so `--demo watch` shows a firing and a recovery within a minute."""


def make_environment(options: GlobalValues) -> Environment:
    no_color = bool(options.values.get("no_color", False))
    return Environment.from_system(no_color=no_color, started=RUN.started)


def make_run_config(ctx: click.Context, options: GlobalValues) -> RunConfig:
    """The RunConfig for a command that reads the fleet; `--demo` starts the simulator for the
    lifetime of `ctx`."""
    from urllib.request import getproxies_environment

    from cli_devops.client import normalize_base_url

    env = make_environment(options)
    debug = bool(options["debug"])
    if options["ca_cert"] and options["insecure"]:
        raise click.UsageError("give --ca-cert or --insecure, not both")
    if options["demo"] and options.values.get("prometheus_url"):
        raise click.UsageError("give --demo or --prometheus-url, not both")
    if options["demo"]:
        if options.given("cp_url"):
            env.warn(f"--demo: using the bundled simulator, not {options.given_as['cp_url']}")
        base_url = _start_demo(ctx)
    else:
        try:
            base_url = normalize_base_url(options["cp_url"])
        except UsageError as err:
            raise UsageError(f"{options.given_as.get('cp_url', '--cp-url')}: {err}") from None
    if options["insecure"] and base_url.startswith("https://"):
        env.warn("--insecure: TLS certificates are not verified")
    settings = ClientSettings(
        base_url=base_url,
        timeout=options["timeout"],
        concurrency=options["concurrency"],
        log=env.warn if debug else None,
        retries=options["retries"],
        deadline=options["deadline"],
        token=options["token"],
        ca_cert=options["ca_cert"],
        insecure=options["insecure"],
        proxies=getproxies_environment(),
    )
    return RunConfig(
        settings=settings,
        thresholds=Thresholds(cpu=options["cpu_threshold"], memory=options["mem_threshold"]),
        env=env,
        strict=bool(options.values.get("strict", False)),
        debug=debug,
        prometheus=_prometheus_settings(options, settings),
    )


def make_run_configs(ctx: click.Context, options: GlobalValues) -> list[tuple[str, RunConfig]]:
    """One RunConfig per context of the config file, for `--all-contexts`: each context's values
    under what the command line and the environment set for all of them."""
    from cli_devops.cli.contexts import read_config
    from cli_devops.cli.options import with_context

    if options.given_as.get("context") == "--context":  # the command line beats CPX_CONTEXT
        raise UsageError("give --context or --all-contexts, not both")
    base = options.without_context or options
    config = read_config(base["config"])
    if not config.contexts:
        raise UsageError(
            f"no contexts in {config.path}; add one with: cli_devops config set-context"
        )
    return [
        (name, make_run_config(ctx, with_context(base, name, config)))
        for name in sorted(config.contexts)
    ]


def _prometheus_settings(options: GlobalValues, cpx: ClientSettings) -> PrometheusSettings | None:
    """With `--prometheus-url`, the settings that read the fleet from it: CPX's timeouts,
    retries, deadline and TLS options, its own token (or the URL's user and password)."""
    url = options.values.get("prometheus_url")
    if not url:
        for name in ("prometheus_selector", "at"):
            if options.values.get(name):
                flag = options.given_as.get(name, name)
                raise click.UsageError(f"{flag} needs --prometheus-url")
        return None
    from cli_devops.sources.promql import check_selector, parse_moment, prometheus_url

    def named(name: str, error: UsageError) -> UsageError:
        return UsageError(f"{options.given_as.get(name, '--' + name.replace('_', '-'))}: {error}")

    try:
        base_url, basic = prometheus_url(url)
    except UsageError as err:
        raise named("prometheus_url", err) from None
    try:
        selector = check_selector(options.values.get("prometheus_selector") or "")
    except UsageError as err:
        raise named("prometheus_selector", err) from None
    at = options.values.get("at")
    try:
        moment = None if at is None else parse_moment(at, time.time())
    except UsageError as err:
        raise named("at", err) from None
    token = options.values.get("prometheus_token")
    client = replace(
        cpx,
        base_url=base_url,
        timeout=cpx.timeout if options.given("timeout") else DEFAULT_QUERY_TIMEOUT,
        token=token or basic,
        auth_scheme="Basic" if basic is not None and not token else "Bearer",
    )
    return PrometheusSettings(client, selector, at=moment)


def _start_demo(ctx: click.Context) -> str:
    from cli_devops.simulator import Fleet, SimulatorServer

    fleet = Fleet.generate(DEMO_FLEET, seed=DEMO_SEED)
    start, down, period = DEMO_FLAP
    fleet.flap_service(time.time() + start, down, period)
    server = SimulatorServer(fleet)
    url = server.start()
    ctx.call_on_close(server.stop)
    return url


def check_urls(values: Mapping[str, Any], flag_of: Callable[[str], str]) -> None:
    """Run `cp_url`, `prometheus_url` and `prometheus_selector`, when present in `values`, through
    the parsers a run uses, so that what `config set-context` writes is what a run accepts (it
    wrote a URL with a password, or one with an empty host label, that every later use of the
    context refused). Raises UsageError naming the option as `flag_of(name)` gives it."""
    from cli_devops.client import normalize_base_url
    from cli_devops.sources.promql import check_selector, prometheus_url

    parsers: dict[str, Callable[[str], object]] = {
        "cp_url": normalize_base_url,
        "prometheus_url": prometheus_url,
        "prometheus_selector": check_selector,
    }
    for name, parse in parsers.items():
        value = values.get(name)
        if isinstance(value, str):
            try:
                parse(value)
            except UsageError as err:
                raise UsageError(f"{flag_of(name)}: {err}") from None
