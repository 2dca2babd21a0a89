"""Start-up pays only for what a command uses: `--version` imports nothing but the package, and
no command imports a library it does not use (checked in a fresh interpreter per run)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cli_devops import __version__

from .conftest import hermetic_environ

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = {
    "aiohttp", "yarl", "multidict", "rich", "textual", "prometheus_client", "yaml", "bcrypt",
    "tomlkit", "click",
}  # fmt: skip

# The entry point as the console script runs it, then the top-level packages loaded, on stderr.
_PROGRAM = """\
import sys, atexit
atexit.register(lambda: print(" ".join(sorted(sys.modules)), file=sys.stderr))
sys.argv[1:] = {args!r}
from cli_devops.launch import main
main()
"""


def _loaded(*args: str) -> tuple[str, set[str]]:
    """Run the entry point with `args` in a fresh interpreter: stdout, and the modules loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(args=list(args))],
        capture_output=True,
        text=True,
        env=hermetic_environ(),
        check=False,
        timeout=60,
    )
    modules = set(done.stderr.strip().splitlines()[-1].split())
    return done.stdout, modules


def _bare() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        env=hermetic_environ(),
        check=True,
        timeout=60,
    )
    return set(done.stdout.split())


def test_version_imports_only_the_package():
    out, modules = _loaded("--version")
    assert out == f"cli_devops, version {__version__}\n"
    extra = modules - _bare() - {"atexit"}
    assert extra <= {"cli_devops", "cli_devops.launch"}, sorted(extra)


def test_version_among_other_arguments_still_goes_through_the_command_group():
    out, modules = _loaded("--demo", "--version")
    assert out == f"cli_devops, version {__version__}\n"
    assert "click" in modules


@pytest.mark.parametrize(
    ("args", "uses"),
    [
        (("--help",), {"click"}),
        (("services", "--help"), {"click"}),
        (("track", "--help"), {"click"}),
        (("top", "--help"), {"click"}),
        (("exporter", "--help"), {"click"}),
        (("simulate", "--help"), {"click"}),
        (("config", "--help"), {"click"}),
        (("completion", "bash"), {"click"}),
        (("--demo", "services", "-o", "json"), {"click", "aiohttp", "yarl", "multidict"}),
        (("--demo", "status", "-o", "csv"), {"click", "aiohttp", "yarl", "multidict"}),
    ],
)
def test_a_command_imports_only_the_libraries_it_uses(args, uses):
    _, modules = _loaded(*args)
    libraries = {name.split(".")[0] for name in modules} & LIBRARIES
    assert libraries == uses


@pytest.mark.parametrize(
    "args", [("--help",), ("status", "--help"), ("wait", "--help"), ("watch", "--help")]
)
def test_help_loads_no_event_loop(args):
    # asyncio alone costs about twice `python -c pass`; only a command that reads pays for it.
    _, modules = _loaded(*args)
    assert "asyncio" not in modules


def test_the_console_script_is_the_launcher():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"cli_devops": "cli_devops.launch:main"}


def test_the_process_start_is_read_from_the_system_not_the_call():
    code = (
        "import time\n"
        "time.sleep(0.3)\n"
        "from cli_devops.launch import process_started\n"
        "print(time.monotonic() - process_started())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    age = float(done.stdout)
    assert 0.3 <= age < 60  # the sleep before the call counts; start-up and load may add more
