"""Every default has one home (`settings.py`): the options, the exporter and the docs show the
values kept there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_devops import settings
from cli_devops.client import ClientSettings
from cli_devops.health import Thresholds
from cli_devops.history import TrackState
from cli_devops.top import TopOptions
from cli_devops.track import TrackOptions

ROOT = Path(__file__).resolve().parent.parent


def readme_default(flag: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^\| `{re.escape(flag)}[^`]*` \|[^|]*\| ([^|]*) \|", text, re.MULTILINE)
    assert match, f"{flag} is not in the README's table of options"
    return match.group(1).strip()


def test_the_readme_shows_the_defaults_settings_keep():
    assert readme_default("--cp-url") == f"`{settings.DEFAULT_URL}`"
    assert readme_default("--cpu-threshold") == f"{settings.DEFAULT_THRESHOLD:g}"
    assert readme_default("--mem-threshold") == f"{settings.DEFAULT_THRESHOLD:g}"
    assert readme_default("--timeout") == (
        f"{settings.DEFAULT_TIMEOUT:g} ({settings.DEFAULT_QUERY_TIMEOUT:g} for a Prometheus query)"
    )
    assert readme_default("--retries") == str(settings.DEFAULT_RETRIES)


@pytest.mark.parametrize(
    ("page", "phrase"),
    [
        ("docs/track.md", f"`--interval` seconds (default {settings.DEFAULT_TRACK_INTERVAL:g})"),
        ("docs/top.md", f"`--interval` seconds (default {settings.DEFAULT_TOP_INTERVAL:g})"),
        ("docs/prometheus.md", f"default port {settings.DEFAULT_EXPORTER_PORT}"),
        ("docs/failure-behaviour.md", f"`--retries` times (default {settings.DEFAULT_RETRIES})"),
        ("docs/failure-behaviour.md", f"`--timeout` (default {settings.DEFAULT_TIMEOUT:g} s)"),
    ],
)
def test_the_docs_show_the_defaults_settings_keep(page, phrase):
    assert phrase in " ".join((ROOT / page).read_text().split())


def test_the_library_starts_from_the_same_defaults():
    assert ClientSettings().timeout == settings.DEFAULT_TIMEOUT
    assert ClientSettings().retries == settings.DEFAULT_RETRIES
    assert Thresholds().cpu == Thresholds().memory == settings.DEFAULT_THRESHOLD
    assert TrackOptions().interval == settings.DEFAULT_TRACK_INTERVAL
    assert TrackOptions().history == TopOptions().history == settings.DEFAULT_HISTORY
    assert TopOptions().interval == settings.DEFAULT_TOP_INTERVAL
    assert TrackState("S", "http://127.0.0.1:9", 1.0).history == settings.DEFAULT_HISTORY


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("track", f"[default: {settings.DEFAULT_TRACK_INTERVAL:g}"),
        ("top", f"[default: {settings.DEFAULT_TOP_INTERVAL:g}"),
        ("exporter", f"[default: {settings.DEFAULT_EXPORTER_LISTEN}]"),
    ],
)
def test_help_shows_the_defaults_settings_keep(cli, command, shown):
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert shown in " ".join(result.stdout.split())
