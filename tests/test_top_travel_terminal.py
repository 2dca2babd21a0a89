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
    assert re.search(r"Api\s+2/2", screen)
    assert "Traceback" not in screen


def test_live_looks_back_and_returns_in_a_terminal(sim):
    child, transcript = spawn_top("top", "--cp-url", sim.url, "--interval", "0.3")
    try:
        child.expect(r"poll [3-9]")
        child.send("T")
        child.expect("HISTORIC")
        mark = len(transcript.getvalue())
        child.send("?")
        child.expect("back to live")
        child.send("?")
        child.send("L")
        child.expect(r"ago\)")  # live again: the header gives the poll's age
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, transcript.getvalue()[-2000:]
    help_screen = ANSI.sub("", transcript.getvalue()[mark:])
    for keys in ("T  t", "b ", "L ", "r "):
        assert keys in help_screen, help_screen


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


def test_every_context_on_one_screen_in_a_terminal(tmp_path, sim, other_sim):
    path = tmp_path / "config.toml"
    path.write_text(
        f'[contexts.prod]\ncp-url = "{sim.url}"\n\n'
        f'[contexts.staging]\ncp-url = "{other_sim.url}"\n\n'
        '[contexts.gone]\ncp-url = "http://127.0.0.1:9"\nretries = 0\n'
    )
    child, transcript = spawn_top(
        "--config", str(path), "top", "--all-contexts", "--interval", "0.5"
    )
    try:
        child.expect("BillingService")
        child.expect("12 instances in 5 services")
        child.send("/")
        child.expect("Enter applies")
        child.send("staging\r\r")  # filter by the context's name, then open its service
        child.expect("Fleet › staging › BillingService")
        child.expect("10.9.0.2")
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, transcript.getvalue()[-2000:]
    screen = ANSI.sub("", transcript.getvalue())
    assert re.search(r"Down\s+gone\s+\S", screen)
    assert re.search(r"Unhealthy\s+prod\s+MLService", screen)
    assert "Traceback" not in screen


def test_all_contexts_with_a_recording_is_one_usage_error(tmp_path):
    child, transcript = spawn_top("top", "--all-contexts", "--replay", str(tmp_path / "x"))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "give --replay or --all-contexts, not both" in transcript.getvalue()
