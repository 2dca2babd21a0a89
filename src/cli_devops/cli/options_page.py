"""`cli_devops options`: every global option described once, as kubectl's `options` page does,
so that each command's help only names the ones it takes."""

from __future__ import annotations

import click

from cli_devops.cli.options import GLOBALS, GlobalValues, global_options


@click.command("options")
@global_options()
def options_page(options: GlobalValues) -> int:
    """Describe the global options (given before or after the command)."""
    ctx = click.get_current_context()
    formatter = ctx.make_formatter()
    formatter.write_paragraph()
    formatter.write_text(
        "Before or after the command. Command line > environment > context > default."
    )
    records = []
    for option in GLOBALS:
        record = option.described().get_help_record(ctx)
        if record is not None:
            records.append(record)
    with formatter.section("Global options"):
        formatter.write_dl(records, col_max=22)
    click.echo(formatter.getvalue(), nl=False)
    return 0
