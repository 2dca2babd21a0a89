"""Global options: declared once here, accepted before or after the command (as kubectl accepts
its flags anywhere), and merged by one rule: the command line wins over the environment variable,
which wins over the context's value (the config file), which wins over the built-in default; a
value given after the command wins over one before it.

Each command declares which global options it uses (`global_options(...)`), so its `--help`
lists those; one given before a command that does nothing with it is a usage error naming it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from cli_devops.cli.not_taken import NotTaken
from cli_devops.errors import UsageError
from cli_devops.params import Duration, Number, Whole
from cli_devops.settings import (
    DEFAULT_MIN_HEALTHY,
    DEFAULT_QUERY_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_THRESHOLD,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
)

if TYPE_CHECKING:
    from cli_devops.config import Config

F = TypeVar("F", bound=Callable[..., Any])


class RunState:
    """What `run` needs to know after parsing, even when parsing or the command failed."""

    debug = False
    started: float | None = None
    """When the run began (`time.monotonic()`): the process's start, or `run`'s call."""


RUN = RunState()

GIVEN_BEFORE = "cli_devops.given_before_command"
"""Key in the group context's `meta`: the global options given before the command."""

PERCENT = Number(0, 100)
OUTPUT_FORMATS = ("table", "json", "csv")


def _check_token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An empty token is no token; anything but visible ASCII cannot go in a header.

    The value is never repeated in the error: it is a secret.
    """
    if not value:
        return None
    if not all("!" <= char <= "~" for char in value):
        raise click.BadParameter("must be visible ASCII characters only (no spaces)")
    return value


def _complete_contexts(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    from click.shell_completion import CompletionItem

    from cli_devops.cli.contexts import context_names, typed

    names = context_names(typed(ctx, "config") or os.environ.get("CPX_CONFIG") or None)
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


@dataclass(frozen=True)
class GlobalOption:
    """One global option: its click declaration, built anew for each command that takes it."""

    flag: str
    attrs: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def envvar(self) -> str | None:
        value = self.attrs.get("envvar")
        return value if isinstance(value, str) else None

    def option(self, *, before_command: bool = False, summary: Sequence[str] = ()) -> click.Option:
        """The click option; before the command it takes no environment variable (the command
        reads that), so an unusable variable never fails a command that does not use it. Its
        check (a token's characters) runs wherever the value is typed.

        In a command's help it is not described (`cli_devops options` describes every global
        option once); the option given `summary`, the flags the command takes, lists them."""
        attrs = dict(self.attrs)
        if before_command:
            attrs.pop("envvar", None)
        return GlobalClickOption([self.flag], summary=summary, **attrs)

    def described(self) -> click.Option:
        """The option as `cli_devops options` describes it: help, default, range."""
        return click.Option([self.flag], **self.attrs)


OPTIONS_PAGE = "cli_devops options"


class GlobalClickOption(click.Option):
    """A global option: parsed and completed as any option, left out of a command's help
    but for one line naming them all (it would otherwise repeat 19 descriptions on 7 pages)."""

    def __init__(self, *args: Any, summary: Sequence[str] = (), **attrs: Any) -> None:
        super().__init__(*args, **attrs)
        self.summary = tuple(summary)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if not self.summary:
            return None
        import textwrap

        text = f"{' '.join(self.summary)}; see '{OPTIONS_PAGE}'"
        lines = textwrap.wrap(text, 40, break_on_hyphens=False)  # fits beside any term at 80
        return "Global options:", "\b\n" + "\n".join(lines)


GLOBALS: tuple[GlobalOption, ...] = (
    GlobalOption("--cp-url", {
        "envvar": "CPX_URL", "default": DEFAULT_URL, "show_default": True, "metavar": "URL",
        "help": "Base URL of the CPX API (env CPX_URL); host:port and [IPv6]:port are accepted.",
    }),
    GlobalOption("--context", {
        "envvar": "CPX_CONTEXT", "metavar": "NAME", "shell_complete": _complete_contexts,
        "help": "Use this context of the config file (env CPX_CONTEXT) [default: the file's "
        "current-context].",
    }),
    GlobalOption("--config", {
        "envvar": "CPX_CONFIG", "metavar": "FILE",
        "help": "Config file of named contexts (env CPX_CONFIG) [default: "
        "$XDG_CONFIG_HOME/cli_devops/config.toml].",
    }),
    GlobalOption("--cpu-threshold", {
        "type": PERCENT, "default": DEFAULT_THRESHOLD, "show_default": True, "metavar": "PCT",
        "help": "An instance above this CPU % is Unhealthy.",
    }),
    GlobalOption("--mem-threshold", {
        "type": PERCENT, "default": DEFAULT_THRESHOLD, "show_default": True, "metavar": "PCT",
        "help": "An instance above this memory % is Unhealthy.",
    }),
    GlobalOption("--timeout", {
        "type": Duration(), "default": DEFAULT_TIMEOUT,
        "show_default": f"{DEFAULT_TIMEOUT:g}; {DEFAULT_QUERY_TIMEOUT:g} for a Prometheus query",
        "metavar": "DURATION",
        "help": "Timeout of each attempt of an API request, connect and read together "
        "(seconds, or 500ms, 2s, 1m).",
    }),
    GlobalOption("--concurrency", {
        "type": Whole(min=1, max=1024), "default": None, "metavar": "N",
        "help": "Requests in flight at once [default: adapts to the API].",
    }),
    GlobalOption("--retries", {
        "type": Whole(0, 10), "default": DEFAULT_RETRIES, "show_default": True,
        "metavar": "N",
        "help": "Retries of a request that failed in a way that may pass (timeout, 5xx, 429, "
        "reset).",
    }),
    GlobalOption("--deadline", {
        "type": Duration(), "metavar": "DURATION",
        "help": "Give up on what is still unread after this long, counted from the start "
        "(per poll or scrape in track and exporter).",
    }),
    GlobalOption("--strict", {
        "is_flag": True, "help": "Exit 4 when any instance could not be read.",
    }),
    GlobalOption("--token", {
        "envvar": "CPX_TOKEN", "metavar": "TOKEN", "callback": _check_token,
        "help": "Bearer token for the CPX API (env CPX_TOKEN, preferred); never printed.",
    }),
    GlobalOption("--ca-cert", {
        "type": click.Path(exists=True, dir_okay=False), "metavar": "FILE",
        "help": "Trust the CA certificates in this PEM file for https:// URLs.",
    }),
    GlobalOption("--insecure", {
        "is_flag": True, "help": "Do not verify TLS certificates (testing only).",
    }),
    GlobalOption("--prometheus-url", {
        "envvar": "CPX_PROMETHEUS_URL", "metavar": "URL",
        "help": "Read the fleet from this Prometheus (or Thanos Query, VictoriaMetrics) instead "
        "of CPX (env CPX_PROMETHEUS_URL).",
    }),
    GlobalOption("--prometheus-selector", {
        "default": "", "metavar": "SELECTOR",
        "help": 'Label matchers picking the fleet\'s series in Prometheus, like {job="cpx"}.',
    }),
    GlobalOption("--prometheus-token", {
        "envvar": "CPX_PROMETHEUS_TOKEN", "metavar": "TOKEN", "callback": _check_token,
        "help": "Bearer token for Prometheus (env CPX_PROMETHEUS_TOKEN, preferred); never "
        "printed.",
    }),
    GlobalOption("--at", {
        "metavar": "TIME",
        "help": "Read the fleet as it was then (with --prometheus-url): RFC 3339, or -5m, "
        "'5m ago'.",
    }),
    GlobalOption("--demo", {
        "is_flag": True, "help": "Use the bundled CPX simulator; no server needed.",
    }),
    GlobalOption("--no-color", {
        "is_flag": True, "help": "No colour (also when NO_COLOR is set).",
    }),
    GlobalOption("--debug", {
        "is_flag": True, "help": "Log requests and show tracebacks on stderr.",
    }),
)  # fmt: skip
BY_NAME = {option.name: option for option in GLOBALS}

CONNECTION = (
    "context", "config", "cp_url", "timeout", "concurrency", "retries", "deadline", "token",
    "ca_cert", "insecure", "demo",
)  # fmt: skip
THRESHOLDS = ("cpu_threshold", "mem_threshold")
PROMETHEUS = ("prometheus_url", "prometheus_selector", "prometheus_token")
FLEET_VIEW = (*CONNECTION, *PROMETHEUS, *THRESHOLDS, "strict", "no_color")
"""What the commands that read the fleet and show it take."""
ONE_SHOT = (*FLEET_VIEW, "at")
"""The commands that read the fleet once, which can read it as it was (`--at`)."""
EVERYWHERE = ("debug",)


@dataclass(frozen=True)
class GlobalValues:
    """The merged global options of one command, and how each was given (for messages)."""

    values: Mapping[str, Any]
    given_as: Mapping[str, str]
    """`--cp-url` or `CPX_URL` for each option not left at its default."""
    without_context: GlobalValues | None = None
    """The same before a context's values filled the rest (for `--all-contexts`)."""

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def given(self, name: str) -> bool:
        return name in self.given_as


def global_options(*names: str) -> Callable[[F], F]:
    """Give a command the global options `names` (and `--debug`); its callback then receives
    them merged as one `GlobalValues` argument, `options`."""
    taken = (*names, *EVERYWHERE)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            local = {name: kwargs.pop(name) for name in taken}
            options = merge(click.get_current_context(), local)
            RUN.debug = bool(options["debug"])
            return func(options=options, **kwargs)

        flags = [option.flag for option in GLOBALS if option.name in taken]
        for name in reversed(taken):
            summary = flags if name == taken[0] else ()
            wrapper.__click_params__ = [  # type: ignore[attr-defined]
                *getattr(wrapper, "__click_params__", []),
                BY_NAME[name].option(summary=summary),
            ]
        return wrapper  # type: ignore[return-value]

    return decorate


def before_command_options(func: F) -> F:
    """Every global option on the group, for `cli_devops --cp-url URL services`."""
    for option in reversed(GLOBALS):
        summary = ("before or after the command",) if option is GLOBALS[0] else ()
        func.__click_params__ = [  # type: ignore[attr-defined]
            *getattr(func, "__click_params__", []),
            option.option(before_command=True, summary=summary),
        ]
    return func


def not_taken(err: click.NoSuchOption) -> NotTaken | None:
    """The one-line error for a global option typed after a command that does not take it;
    None for an option that is no global one (click's own message, with its suggestion)."""
    name = err.option_name.lstrip("-").replace("-", "_")
    if err.ctx is None or name not in BY_NAME or not err.option_name.startswith("--"):
        return None
    return NotTaken([name], err.ctx)


def given_on_command_line(ctx: click.Context, values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in values.items()
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }


def merge(ctx: click.Context, local: Mapping[str, Any]) -> GlobalValues:
    """One command's global options: after the command > before it > environment > context >
    default."""
    root = ctx.find_root()  # `config use-context` is two levels down
    before: Mapping[str, Any] = root.meta.get(GIVEN_BEFORE, {}) if root is not ctx else {}
    unused = [name for name in before if name not in local]
    if unused:
        raise NotTaken(unused, ctx)
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for name, value in local.items():
        source = ctx.get_parameter_source(name)
        option = BY_NAME[name]
        if source is ParameterSource.COMMANDLINE:
            values[name], given_as[name] = value, option.flag
        elif name in before:
            values[name], given_as[name] = before[name], option.flag
        else:
            values[name] = value
            if source is ParameterSource.ENVIRONMENT and option.envvar:
                given_as[name] = option.envvar
    base = GlobalValues(values, given_as)
    if ctx.params.get("all_contexts"):  # every context: none is chosen, CPX_CONTEXT yields
        if given_as.get("context") == "--context":
            raise UsageError("give --context or --all-contexts, not both")
        return base
    return with_context(base, values["context"]) if "context" in local else base


def with_context(
    base: GlobalValues, context: str | None, config: Config | None = None
) -> GlobalValues:
    """`base` with what was set nowhere (command line, environment) taken from `context` (or
    the config file's current one when None), and `values["context"]` the name of the context
    in use (None without one). `config` is the file when already read."""
    from cli_devops.cli.contexts import select

    values, given_as = dict(base.values), dict(base.given_as)
    keys = {option.flag[2:]: option.option() for option in GLOBALS}
    selected = select(values["config"], context, keys, config)
    values["context"] = None if selected is None else selected.context.name
    if selected is not None:
        for name, value in selected.values.items():
            if name in values and name not in given_as:
                values[name] = value
                given_as[name] = selected.given_as(BY_NAME[name].flag[2:])
    return GlobalValues(values, given_as, base)


def output_options(func: F) -> F:
    """`-o table|json|csv` and `--no-headers`, declared once for every command that prints."""
    func = click.option(
        "--no-headers",
        is_flag=True,
        help="Tables and CSV without the header line (and tables without the summary line).",
    )(func)
    return click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUT_FORMATS, case_sensitive=False),
        default="table",
        show_default=True,
        help="Output format; json and csv are for scripts (see README for the fields).",
    )(func)


def min_healthy_option(func: F) -> F:
    return click.option(
        "--min-healthy",
        type=Whole(min=1),
        default=DEFAULT_MIN_HEALTHY,
        show_default=True,
        help="A service with fewer healthy instances than this is flagged.",
    )(func)
