"""`cli_devops config`: the group, light to import; its subcommands load on first use."""

from __future__ import annotations

import click


class _LoadedOnUse(click.Group):
    """A group whose subcommands are imported from `config_commands` when first listed or
    looked up (the top-level `--help` shows this group's own help only)."""

    def _load(self) -> None:
        if not self.commands:
            from cli_devops.cli.config_commands import COMMANDS

            for command in COMMANDS:
                self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


@click.group("config", cls=_LoadedOnUse)
def config_group() -> None:
    """Named contexts: one set of global options per CPX environment (kubectl-style).

    \b
    cli_devops config set-context prod --cp-url 10.0.0.5:8080 --cpu-threshold 85
    cli_devops config use-context prod
    cli_devops config get-contexts
    """
