"""The error of a global option given to a command that does nothing with it: one line that
names the commands that take it, and where to look instead (`--at` on `track`)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from cli_devops.errors import CliDevopsError

LOOKING_BACK = {
    "track": "track follows the present; top --at TIME looks back, with --replay FILE or "
    "--prometheus-url",
}
"""Where to look instead, for a command that cannot read the fleet as it was (`--at`)."""


class NotTaken(CliDevopsError):
    """`--at is not an option of 'track'; services, status, top, unhealthy-services take it
    (...)`. `names` are option names (`cp_url`); the commands are the root group's."""

    def __init__(self, names: Sequence[str], ctx: click.Context) -> None:
        command = ctx.info_name or ""
        flags = ", ".join("--" + name.replace("_", "-") for name in names)
        takers = sorted(
            name
            for name, other in getattr(ctx.find_root().command, "commands", {}).items()
            if all(any(p.name == wanted for p in other.params) for wanted in names)
        )
        them = "it" if len(names) == 1 else "them"
        where = f"; {', '.join(takers)} take {them}" if takers else ""
        hint = f" ({LOOKING_BACK[command]})" if "at" in names and command in LOOKING_BACK else ""
        verb = "is not an option" if len(names) == 1 else "are not options"
        super().__init__(f"{flags} {verb} of '{command}'{where}{hint}")
