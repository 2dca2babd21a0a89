"""The README's examples are what the commands print: each fenced example whose command runs on
`--demo` (and the `config` session, in a config directory of its own) is run, and its headers,
JSON keys, summary line and exit code must match; the config session's output exactly."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_process

README = Path(__file__).parent.parent / "README.md"
pytestmark = pytest.mark.slow
OPTIONAL = ("Note", "Reason")
"""Columns a table has only when a row needs them (an outlier, an unreadable instance)."""


def sessions() -> list[list[tuple[str, list[str]]]]:
    """Per fenced block that shows a shell session: its commands, each with the lines shown
    after it."""
    found = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), flags=re.S | re.M):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        if steps:
            found.append(steps)
    return found


def runnable(command: str) -> bool:
    """What runs here and ends by itself: `--demo` commands and `config` ones, not servers, a
    console, a live view, `watch` (until stopped; tests/test_watch.py runs it on the demo), or
    commands that need a CPX server of their own."""
    words = shlex.split(command.split("  #", maxsplit=1)[0].split("|", maxsplit=1)[0])
    if words[0] != "cli_devops" or words[-1] == "&":
        return False
    if (
        any(
            word in words
            for word in (
                "top",
                "exporter",
                "simulate",
                "watch",
                "--context",
                "--all-contexts",
                "--cp-url",
            )
        )
        and "config" not in words
    ):
        return False  # fmt: skip
    if "track" in words and "--count" not in words:
        return False
    return "--demo" in words or "config" in words


CHECKED = [
    (n, command, shown, steps)
    for n, steps in enumerate(sessions())
    for command, shown in steps
    if runnable(command)
]


def test_the_readme_has_examples_to_check():
    commands = [command for _, command, _, _ in CHECKED]
    for expected in ("cli_devops --demo status", "cli_devops --demo unhealthy-services",
                     "cli_devops config get-contexts"):  # fmt: skip
        assert expected in commands


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def shape(value: Any) -> Any:
    """The keys of a JSON value, nested, without the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def numbers_as_n(text: str) -> str:
    return re.sub(r"[0-9]+(\.[0-9]+)?", "N", text)


def run(command: str, home: Path) -> tuple[int, list[str], list[str]]:
    """Run an example as the README writes it (`| head -N` included), with HOME and the config
    directory in `home`; paths under it are written back as `~`."""
    line, _, pipe = command.split("  #", maxsplit=1)[0].partition("|")
    words = shlex.split(line)[1:]
    result = run_process(*words, env_extra={"HOME": str(home),
                                            "XDG_CONFIG_HOME": str(home / ".config")})  # fmt: skip
    out = result.stdout.replace(str(home), "~").splitlines()
    if pipe.strip():
        head = re.fullmatch(r"\s*head -(\d+)\s*", pipe)
        assert head, f"an example's pipe this test does not know: {pipe}"
        out = out[: int(head.group(1))]
    return result.exit_code, out, result.stderr.replace(str(home), "~").splitlines()


def expected_exit(steps: list[tuple[str, list[str]]], command: str) -> int:
    """The code shown by `echo $?` right after `command`, else 0."""
    commands = [step[0] for step in steps]
    after = commands.index(command) + 1
    if after < len(steps) and steps[after][0] == "echo $?":
        return int(steps[after][1][0])
    return 0


@pytest.mark.parametrize(("block", "command", "shown", "steps"), CHECKED,
                         ids=[command for _, command, _, _ in CHECKED])  # fmt: skip
def test_a_readme_example_is_what_the_command_prints(block, command, shown, steps, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for earlier, _ in steps[: [step[0] for step in steps].index(command)]:
        if runnable(earlier):  # the session so far, as the reader ran it
            run(earlier, home)
    code, out, err = run(command, home)
    assert code == expected_exit(steps, command), (command, err)
    if "config" in shlex.split(command):
        assert out == shown, command  # no fleet in it: the same text, exactly
    elif "-o" in command.split() and "json" in command.split():
        example = [json.loads(line) for line in shown if line.strip()]
        actual = [json.loads(line) for line in out if line.strip()]
        assert [shape(value) for value in actual[: len(example)]] == [
            shape(value) for value in example
        ], command
    else:
        header = cells(shown[0])
        actual = cells(out[0])
        # the header, column for column; Note and Reason show only when some row has one
        assert [title for title in actual if title in header or title not in OPTIONAL] == header
        rows = [line for line in shown[1:] if len(cells(line)) == len(header)]
        assert out[1:], command  # rows; how many depends on the simulated fleet's moment
        assert all(len(header) <= len(cells(line)) <= len(actual) for line in out[1:]), command
        summary = [numbers_as_n(line) for line in shown[1 + len(rows) :]]
        if summary:  # on a terminal it follows the table; piped, it goes to stderr
            assert [numbers_as_n(line) for line in err[-len(summary) :]] == summary, command
