"""The house stays in order: every module on the room map (docs/design.md), rooms of a readable
size, one name per class, no dead code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "cli_devops"
DESIGN = ROOT / "docs" / "design.md"
UNLISTED = {"__init__.py", "__main__.py"}
"""A package's `__init__` re-exports and `__main__` runs the CLI: neither is a room of its own."""


def source_modules() -> set[str]:
    """Every module and package under src/, as the room map names them: `health.py`, `top/`,
    `top/app.py`."""
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        relative = path.relative_to(SOURCE)
        if path.name not in UNLISTED:
            found.add(relative.as_posix())
        for parent in relative.parents:
            if parent != Path():
                found.add(parent.as_posix() + "/")
    return found


def mapped_modules(text: str) -> set[str]:
    """The modules the table of docs/design.md names: a row's first cell names top-level
    modules (`health.py`) or a package (`top/`), and a package's row names its modules in
    backticks as `name.py`."""
    named: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+`) \| (.+) \|$", text, flags=re.MULTILINE):
        first, description = row
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", first):
            named.add(name)
            if name.endswith("/"):
                named.update(name + module for module in re.findall(r"`(\w+\.py)`", description))
    return named


def room_map_problems(text: str) -> list[str]:
    modules, named = source_modules(), mapped_modules(text)
    return [
        *(f"not on the room map (docs/design.md): {name}" for name in sorted(modules - named)),
        *(f"on the room map but not in src/: {name}" for name in sorted(named - modules)),
    ]


def test_the_room_map_names_every_module_and_no_other():
    assert room_map_problems(DESIGN.read_text()) == []


def test_the_room_map_check_names_a_module_added_or_removed():
    text = DESIGN.read_text()
    before = set(room_map_problems(text))
    renamed = text.replace("`health.py`", "`wellness.py`", 1)
    assert set(room_map_problems(renamed)) - before == {
        "not on the room map (docs/design.md): health.py",
        "on the room map but not in src/: wellness.py",
    }
    unlisted = text.replace("`app.py` (the Textual app), ", "", 1)
    assert set(room_map_problems(unlisted)) - before == {
        "not on the room map (docs/design.md): top/app.py"
    }


def line_counts(folder: Path) -> dict[str, int]:
    return {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for path in sorted(folder.rglob("*.py"))
    }


def test_no_source_module_is_over_400_lines():
    long = {name: lines for name, lines in line_counts(SOURCE).items() if lines > 400}
    assert not long, f"source modules over 400 lines (split by concept): {long}"


def test_no_test_module_is_over_600_lines():
    long = {name: lines for name, lines in line_counts(ROOT / "tests").items() if lines > 600}
    assert not long, f"test modules over 600 lines (split by concept): {long}"


def test_no_two_classes_share_a_name():
    classes: Counter[str] = Counter()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        classes.update(node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef))
    assert not [name for name, count in classes.items() if count > 1]


def test_vulture_finds_no_dead_code():
    done = subprocess.run(
        [sys.executable, "-m", "vulture", "--min-confidence", "80", "src"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_writers_style_every_status_the_health_rules_decide():
    from cli_devops.health import Status
    from cli_devops.render import STATUS_STYLES

    assert set(STATUS_STYLES) == {status.value for status in Status}


SOURCE_CLASSES = {"CpxSource", "PrometheusSource"}


def test_the_fleet_source_is_chosen_in_one_place():
    """Only `run_config.open_source` names a source class outside `sources/`: every other
    module reads through the `FleetSource` protocol, without isinstance or getattr probing."""
    named: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        if relative.startswith("sources/") or relative == "run_config.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in SOURCE_CLASSES:
                named.append(f"{relative}:{node.lineno} {node.id}")
            if isinstance(node, ast.alias) and node.name in SOURCE_CLASSES:
                named.append(f"{relative}:{node.name}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr":
                target = ast.unparse(node.args[0]) if node.args else ""
                if "source" in target:
                    named.append(f"{relative}:{node.lineno} getattr({target}, ...)")
    assert named == []


def test_the_scripts_beside_the_package_import_what_exists():
    """bench/ and docs/ import the package too; a module moved or renamed without them would
    only show in the slow benchmark test."""
    import importlib

    missing = []
    for path in sorted([*(ROOT / "bench").glob("*.py"), *(ROOT / "docs").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cli_devops"):
                try:
                    module = importlib.import_module(str(node.module))
                except ImportError:
                    missing.append(f"{path.name}: {node.module}")
                    continue
                missing += [
                    f"{path.name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if not hasattr(module, alias.name)
                ]
    assert missing == []
