"""Shell completion: `cli_devops completion bash|zsh|fish` prints click's script, and service
names complete by asking the API of the context in use, briefly.

A completion runs while the user waits at the prompt, so it asks with a short budget
(COMPLETION_BUDGET in all, no retry) and offers nothing, silently, when the API is unreachable,
slow, or the options typed so far are unusable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from cli_devops.cli.options import GlobalValues, global_options

if TYPE_CHECKING:  # click's completion machinery is imported only while completing
    from click.shell_completion import CompletionItem

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CLI_DEVOPS_COMPLETE"
COMPLETION_BUDGET = 0.9
"""Seconds for the whole read of service names (at most 1 s, as a prompt can wait)."""
ATTEMPT_TIMEOUT = 0.5


LINE_VAR = "_CLI_DEVOPS_COMPLETE_LINE"
"""The command line up to the cursor, as bash's script passes it (see `line_completion`)."""

_SOURCE_BASH = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response completion type value
    # COMP_WORDS is split at ':' too (COMP_WORDBREAKS), so `--cp-url 127.0.0.1:9000` would be
    # three words: the words are rebuilt from the line itself, as kubectl's script does.
    local line="${COMP_LINE:0:COMP_POINT}"
    local word="${line##*[[:space:]]}"
    local colon="${word%%"${word##*:}"}"

    response=$(env _CLI_DEVOPS_COMPLETE_LINE="$line" %(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read -r type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            # bash replaces only what follows the last ':' of the word
            COMPREPLY+=("${value#"$colon"}")
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


def line_completion() -> None:
    """Make click's bash completion read the words from the whole line (LINE_VAR), not from
    COMP_WORDS; called before completing and before printing the script."""
    from click.shell_completion import BashComplete, add_completion_class, split_arg_string

    class LineBashComplete(BashComplete):
        source_template = _SOURCE_BASH

        def get_completion_args(self) -> tuple[list[str], str]:
            line = os.environ.get(LINE_VAR)
            if line is None:  # the variables of click's own script
                return super().get_completion_args()
            words = split_arg_string(line)
            if not line or line[-1].isspace():
                return words[1:], ""
            return words[1:-1], words[-1] if len(words) > 1 else ""

    add_completion_class(LineBashComplete, "bash")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@global_options()
def completion(options: GlobalValues, shell: str) -> int:
    """Print the shell completion script for SHELL (see the README to install it)."""
    from click.shell_completion import get_completion_class

    line_completion()
    root = click.get_current_context().find_root()
    completer = get_completion_class(shell)
    assert completer is not None, shell  # every choice is one of click's shells
    click.echo(completer(root.command, {}, "cli_devops", COMPLETE_VAR).source())
    return 0


def complete_services(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Service names of the fleet (as far as it can be read in the budget) starting with what
    was typed, case-insensitively; nothing on any failure."""
    try:
        names = _service_names(ctx)
    except Exception:  # completion must never break the shell; it offers nothing instead
        return []
    from click.shell_completion import CompletionItem

    wanted = incomplete.lower()
    return [CompletionItem(name) for name in sorted(names) if name.lower().startswith(wanted)]


def _service_names(ctx: click.Context) -> set[str]:
    from cli_devops.cli.contexts import select, typed
    from cli_devops.cli.options import GLOBALS
    from cli_devops.client import normalize_base_url
    from cli_devops.run_config import RunConfig, read_snapshot
    from cli_devops.settings import DEFAULT_URL, ClientSettings

    names = ("cp_url", "token", "ca_cert", "insecure")
    values = {name: typed(ctx, name) for name in names}
    if any(values[name] is None for name in names):
        keys = {option.flag[2:]: option.option() for option in GLOBALS}
        config = typed(ctx, "config") or os.environ.get("CPX_CONFIG") or None
        context = typed(ctx, "context") or os.environ.get("CPX_CONTEXT") or None
        selected = select(config, context, keys)
        for name in names:
            if values[name] is None and selected is not None:
                values[name] = selected.values.get(name)
    settings = ClientSettings(
        base_url=normalize_base_url(values["cp_url"] or DEFAULT_URL),
        timeout=ATTEMPT_TIMEOUT,
        retries=0,
        deadline=COMPLETION_BUDGET,
        token=values["token"],
        ca_cert=values["ca_cert"],
        insecure=bool(values["insecure"]),
    )
    snapshot = read_snapshot(RunConfig(settings))
    return {
        instance.service
        for instance in snapshot.instances
        if instance.service and _shell_safe(instance.service)
    }


def _shell_safe(name: str) -> bool:
    """Only names a shell can take as one word: printable, no whitespace (a name from the API
    with a newline would otherwise split into several completions)."""
    return name.isprintable() and not any(char.isspace() for char in name) and len(name) <= 200
