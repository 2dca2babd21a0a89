"""What the package claims about Pythons and dependencies is what CI tests and the design records:
`requires-python` is the lowest Python `.ci/run` tests, the classifiers list exactly the Pythons
it tests, mypy and ruff target the lowest, the README says the same, and every runtime
dependency's floor is the one docs/design.md gives a reason for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CI = (ROOT / ".ci" / "run").read_text()


def _ci_python(name: str) -> tuple[int, int]:
    found = re.search(rf"^{name}=3\.([0-9]+)$", CI, re.MULTILINE)
    assert found, f".ci/run sets no {name}"
    return 3, int(found.group(1))


LOWEST = _ci_python("LOWEST")
NEWEST = _ci_python("NEWEST")


def _text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def test_ci_tests_two_pythons_and_runs_both():
    assert LOWEST < NEWEST
    assert 'make check PYTHON="$lowest"' in CI
    assert 'make test PYTHON="$newest"' in CI
    assert 'find_python "$LOWEST"' in CI
    assert 'find_python "$NEWEST"' in CI


def test_requires_python_is_the_lowest_python_ci_tests():
    assert PYPROJECT["project"]["requires-python"] == f">={_text(LOWEST)}"


def test_the_classifiers_name_exactly_the_pythons_ci_tests():
    prefix = "Programming Language :: Python :: 3."
    named = {
        classifier.removeprefix("Programming Language :: Python :: ")
        for classifier in PYPROJECT["project"]["classifiers"]
        if classifier.startswith(prefix)
    }
    assert named == {_text(LOWEST), _text(NEWEST)}


def test_mypy_and_ruff_target_the_lowest_python():
    tools = PYPROJECT["tool"]
    assert tools["mypy"]["python_version"] == _text(LOWEST)
    assert tools["ruff"]["target-version"] == f"py{LOWEST[0]}{LOWEST[1]}"


def test_the_readme_names_the_pythons_ci_tests():
    readme = (ROOT / "README.md").read_text()
    claims = re.findall(r"Python (3\.[0-9]+) to (3\.[0-9]+)", readme)
    assert claims, "the README names no supported Pythons"
    assert set(claims) == {(_text(LOWEST), _text(NEWEST))}
    assert not re.search(r"Python 3\.[0-9]+ or newer", readme)


def _floors_in_design() -> dict[str, str]:
    """The table of runtime dependency floors in docs/design.md: name -> version."""
    design = (ROOT / "docs" / "design.md").read_text()
    section = design.split("Floors of the runtime dependencies", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| \*\*([A-Za-z_]+)\*\* \| `>=([0-9.]+)` \|", section, re.MULTILINE)
    return dict(rows)


def test_every_runtime_dependency_floor_is_the_one_the_design_gives_a_reason_for():
    declared = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        found = re.fullmatch(r"([A-Za-z_]+)>=([0-9.]+)", requirement)
        assert found, f"{requirement!r}: a floor (>=) and no marker or upper bound"
        declared[found.group(1)] = found.group(2)
    assert declared == _floors_in_design()


def test_the_http_client_floor_is_past_its_published_advisories():
    floors = _floors_in_design()
    assert tuple(map(int, floors["aiohttp"].split("."))) >= (3, 14, 3)
