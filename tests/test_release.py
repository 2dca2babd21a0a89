"""The release: the sdist holds everything its own tests need, builds a wheel, and that wheel,
installed in a fresh virtual environment, passes the sdist's tests.

Built without isolation from this environment's setuptools (no download); the fresh venv borrows
this environment's installed dependencies through a .pth line, so only the package itself comes
from the release. `make sdist-check` runs the whole suite the same way with freshly installed
dependencies.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

import cli_devops

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("LICENSE", "README.md", "CHANGELOG.md", "Makefile", ".ci/run", "pyproject.toml")
NEEDED_TREES = ("tests", "deploy", "bench", "src/cli_devops")
LEFTOVERS = (".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".*_cache",
             ".hypothesis")  # fmt: skip
FAST_TESTS = (
    "tests/test_cli_surface.py",
    "tests/test_config_file.py",
    "tests/test_durations.py",
    "tests/test_prometheus.py::test_promtool_check_config",
)

pytestmark = [pytest.mark.system, pytest.mark.slow]


def _run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _source_files(tree: str) -> set[str]:
    skip = {"__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
    found = set()
    for path in (ROOT / tree).rglob("*"):
        relative = path.relative_to(ROOT)
        if path.is_file() and not skip & set(relative.parts) and path.suffix != ".pyc":
            found.add(relative.as_posix())
    return found


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # From a copy without build leftovers: setuptools adds the files listed in an old
    # *.egg-info/SOURCES.txt, which would hide a file missing from MANIFEST.in.
    source = tmp_path_factory.mktemp("source") / "tree"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFTOVERS))
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, source)
    (built,) = out.glob("cli_devops-*.tar.gz")
    return built


def test_the_sdist_holds_what_its_tests_read(sdist):
    with tarfile.open(sdist) as archive:
        prefix = f"cli_devops-{cli_devops.__version__}/"
        members = {name.removeprefix(prefix) for name in archive.getnames()}
        metadata = archive.extractfile(prefix + "PKG-INFO")
        assert metadata is not None
        info = email.parser.Parser().parsestr(metadata.read().decode())
    expected = set(NEEDED).union(*(_source_files(tree) for tree in NEEDED_TREES))
    assert expected - members == set()
    assert {"tests/conftest.py", "tests/scraping.py", "tests/__init__.py"} <= members
    assert info["Version"] == cli_devops.__version__
    assert info["License-Expression"] == "MIT"
    classifiers = info.get_all("Classifier")
    assert "Environment :: Console" in classifiers
    assert "Topic :: System :: Monitoring" in classifiers
    tested = f"Programming Language :: Python :: {sys.version_info[0]}.{sys.version_info[1]}"
    assert tested in classifiers
    assert "prometheus" in info["Keywords"]


def test_the_sdist_builds_a_wheel_that_passes_its_tests_in_a_fresh_venv(sdist, tmp_path):
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    unpacked = tmp_path / sdist.name.removesuffix(".tar.gz")
    _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp_path, unpacked)
    (wheel,) = tmp_path.glob("cli_devops-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel)
    # Then the dependencies from this environment, after the venv's own directory (a .pth line
    # adds the directory only, not what its own .pth files add, such as an editable install).
    # Added after the install, so pip does not take a cli_devops there for the one to install.
    (site / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = _run(python, "-c", "import cli_devops; print(cli_devops.__file__)")
    assert where.startswith(str(site)), where
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         *FAST_TESTS, cwd=unpacked, env=env)  # fmt: skip
