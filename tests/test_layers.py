"""The package's layers are declared as import-linter contracts in pyproject.toml and hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_lint_imports_keeps_every_contract():
    done = subprocess.run(
        [Path(sys.executable).parent / "lint-imports", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    assert "No import circle" in done.stdout


def test_no_import_circle_among_modules_imports_inside_functions_included():
    import grimp

    graph = grimp.build_graph("cli_devops")
    modules = sorted(graph.modules)
    for module in modules:
        for other in graph.find_modules_directly_imported_by(module):
            if other == module or module.startswith(other + ".") or other.startswith(module + "."):
                continue  # a package and its own modules (re-exports)
            cycle = graph.find_shortest_chain(importer=other, imported=module)
            assert cycle is None, f"import circle: {module} -> {' -> '.join(cycle or [])}"
