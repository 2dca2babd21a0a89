"""The command-line layer: parse options, build a `RunConfig`, call the command function.

No business logic lives here; `main.run` is the single place where errors become a message on
stderr and an exit code.
"""

from cli_devops.cli.main import cli, main, run

__all__ = ["cli", "main", "run"]
