"""Property tests of `watch`'s untrusted inputs (the URLs to post to, the secret file) and of
its rules over any sequence of polls: each event once, a recovery only after its firing."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cli_devops.errors import UsageError
from cli_devops.health import Thresholds
from cli_devops.model import Instance
from cli_devops.watch.detector import Detector, Moment
from cli_devops.watch.events import FIRING_KINDS, RECOVERY_OF
from cli_devops.watch.posting import Target
from cli_devops.watch.webhook import read_secret

START = datetime(2026, 1, 1, tzinfo=UTC)


@given(
    st.text(max_size=300)
    | st.from_regex(r"https?://[\w.:@\[\]%-]{0,40}(/\S{0,20})?")
    | st.from_regex(r"https?://[a-z.]{1,80}/", fullmatch=True)
)
def test_any_url_text_is_a_target_or_one_usage_error(text):
    try:
        target = Target(text, "--webhook")
    except UsageError as err:
        assert "\n" not in str(err)
        return
    assert target.url.scheme in ("http", "https") and target.url.host
    target.url.host.encode("idna")  # what aiohttp does with it: never an unexpected error
    assert "@" not in target.shown.split("//", 1)[1].split("/", 1)[0]  # no user or password


@given(st.binary(max_size=5000))
@settings(max_examples=50)
def test_any_secret_file_content_is_a_secret_or_one_usage_error(data):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "secret"
        path.write_bytes(data)
        path.chmod(0o600)
        try:
            secret = read_secret(path)
        except UsageError as err:
            assert "\n" not in str(err)
            assert not data.strip(b"\r\n") or len(data) > 4096
            return
    assert secret
    assert data in (secret, secret + b"\n", secret + b"\r\n")


INSTANCE = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"])
FIGURE = st.sampled_from([10.0, 95.0, None])
SERVICE = st.sampled_from(["Pay", "Geo", None])


def instance(ip: str, service: str | None, cpu: float | None) -> Instance:
    """Read (cpu given) or not (then maybe with no service, as when not read at all)."""
    return Instance(ip, service, cpu, 20.0 if cpu else None, None if cpu else "timeout")


POLL = st.none() | st.lists(
    st.builds(instance, INSTANCE, SERVICE, FIGURE), max_size=3, unique_by=lambda i: i.ip
)


@given(st.lists(POLL, max_size=30), st.sampled_from([0.0, 1.0, 3.0]))
def test_every_recovery_follows_its_firing_and_nothing_fires_twice(polls, hold):
    detector = Detector(Thresholds(), 2, hold=hold, source="http://cpx")
    firing: dict[tuple[str, ...], str] = {}
    for step, poll in enumerate(polls):
        at = Moment(START + timedelta(seconds=step), float(step))
        events = detector.unreachable(at, "down") if poll is None else detector.observe(at, poll)
        for event in events:
            if event.kind in FIRING_KINDS:
                assert event.key not in firing, f"{event.kind} twice"
                firing[event.key] = event.kind
            else:
                assert RECOVERY_OF[firing.pop(event.key)] == event.kind
        if poll is not None:  # an instance gone from the fleet has no more events
            present = {i.ip for i in poll}
            firing = {k: v for k, v in firing.items() if k[0] != "instance" or k[1] in present}
    assert {event.key for event in detector.firing()} == set(firing)


@given(st.text(max_size=20), st.text(max_size=20))
def test_the_edit_distance_of_names_is_a_distance(a, b):
    from cli_devops.service_names import _edits

    assert _edits(a, a) == 0
    assert _edits(a, b) == _edits(b, a)
    assert abs(len(a) - len(b)) <= _edits(a, b) <= max(len(a), len(b))
    assert (_edits(a, b) == 0) == (a == b)
