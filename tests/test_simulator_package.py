"""The simulator as a package of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cli_devops.simulator

from .conftest import hermetic_environ

PACKAGE = Path(cli_devops.simulator.__file__).resolve().parent


def test_the_simulator_imports_nothing_of_the_client_side():
    code = (
        "import sys, cli_devops.simulator; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('cli_devops', 'aiohttp', "
        "'yarl', 'rich', 'click', 'prometheus_client')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=hermetic_environ(),
        check=True,
        timeout=60,
    )
    loaded = set(done.stdout.split())
    modules = {f"cli_devops.simulator.{path.stem}" for path in PACKAGE.glob("*.py")}
    assert loaded == {"cli_devops", "cli_devops.serving", "cli_devops.simulator"} | (
        modules - {"cli_devops.simulator.__init__"}
    )


def test_no_module_of_the_package_is_over_500_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert len(sizes) >= 7
    assert max(sizes.values()) <= 500, sizes
