"""Time travel and every context in `top`, in a real terminal (a pseudo-terminal)."""

from __future__ import annotations

import re
from datetime import timedelta

import pexpect
import pytest

from .test_top_terminal import ANSI, spawn_top
from .test_top_travel import START, write_recording

pytestmark = [pytest.mark.system, pytest.mark.slow]


def test_replay_opens_at_a_moment_and_travels_in_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    path = tmp_path / "night.jsonl"
    write_recording(str(path))
    at = (START + timedelta(minutes=2)).isoformat()
    child, transcript = spawn_top("top", "--replay", str(path), "--at", at)
    try:
        child.expect(r"poll 3 of 7 at 23:59:00")
        child.expect("PAUSED")
        child.send("t")
        child.expect(r"poll 4 of 7 at 00:00:00")  # over midnight
        child.send("T")
        child.expect(r"poll 3 of 7 at 23:59:00")
        child.send("b")
        child.expect("Enter goes")
        child.send("2026-12-05T00:02:10Z\r")
        child.expect(r"poll 6 of 7 at 00:02:00")
        child.send("?")
        child.expect("go to a time")
        child.send("?")
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, transcript.getvalue()[-2000:]
    screen = ANSI.sub("", transcript.getvalue())
    assert re.search(r"Api\s+2\s+2/2", screen)
    assert "Traceback" not in screen


def test_replay_at_before_the_recording_is_one_line_exit_2(tmp_path):
    path = tmp_path / "night.jsonl"
    write_recording(str(path))
    child, transcript = spawn_top(
        "top", "--replay", str(path), "--at", (START - timedelta(days=1)).isoformat()
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    lines = [line for line in ANSI.sub("", transcript.getvalue()).splitlines() if line.strip()]
    assert lines == [
        "cli_devops: error: the recording starts at 2026-12-04T23:57:00.000Z, "
        "after 2026-12-03T23:57:00.000Z"
    ]
