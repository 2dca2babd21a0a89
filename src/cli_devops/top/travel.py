"""Time travel in `top`: the moment a user asks for, which sample is at or before it, and the
polls a live session keeps so it can look back.

`b` asks for a moment as `HH:MM[:SS]` (local time, on the day of the moment on the screen), an
RFC 3339 instant (`2026-12-04T23:59:30Z`, so a recording that spans midnight is addressed by
full instants), or a duration counted from the moment on the screen (`-5m`, `5m ago`, `+30s`).
The screen then shows the latest sample at or before that moment.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cli_devops.durations import parse_duration
from cli_devops.errors import UsageError
from cli_devops.model import Instance
from cli_devops.top.source import FleetReading

KEEP_POLLS = 720
"""A live session keeps at most this many polls for looking back (24 minutes at 2 s) ..."""
KEEP_SAMPLES = 2_000_000
"""... and at most this many instance readings in all (200 polls of 10,000 instances;
about 10 bytes each, compressed: some 20 to 40 MB)."""
MAX_WHEN = 64
"""Longer text is no moment anyone types."""
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
INSTANT_FORM = "an RFC 3339 instant like 2026-12-04T17:00:00Z"
WHEN_FORMS = f"HH:MM[:SS], {INSTANT_FORM}, or -5m"


def parse_when(text: str, on_screen: datetime) -> datetime:
    """The moment `text` names (see the module's docstring), as an aware datetime; UsageError
    (one line) when it names none."""
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"no time given; type {WHEN_FORMS}")
    if len(stripped) > MAX_WHEN or not stripped.isprintable():
        raise UsageError(f"not a time; type {WHEN_FORMS}")
    clock = _CLOCK.fullmatch(stripped)
    if clock is not None:
        hour, minute, second = (int(part or 0) for part in clock.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise UsageError(f"{stripped!r} is not a time of day")
        local = on_screen.astimezone()
        return local.replace(hour=hour, minute=minute, second=second, microsecond=0)
    sign, rest = 0, stripped
    if stripped[0] in "+-":
        sign, rest = (1 if stripped[0] == "+" else -1), stripped[1:]
    elif stripped.endswith(" ago"):
        sign, rest = -1, stripped[:-4]
    if sign:
        try:
            seconds = parse_duration(rest)
        except ValueError:
            raise UsageError(f"{stripped!r} is not a duration like -5m, -90s or -1h30m") from None
        return _shifted(on_screen, sign * seconds)
    return parse_instant(stripped, WHEN_FORMS)


def _shifted(moment: datetime, seconds: float) -> datetime:
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        raise UsageError("that moment is out of range") from None


def parse_instant(text: str, expected: str = INSTANT_FORM) -> datetime:
    """An RFC 3339 instant (with its offset or Z), as an aware datetime; UsageError saying what
    was `expected` otherwise."""
    if not text or len(text) > MAX_WHEN or not text.isprintable():
        raise UsageError(f"not a time; type {expected}")
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        moment = None
    if moment is None or "T" not in text.upper() or moment.tzinfo is None:
        raise UsageError(f"{text!r} is not a time; type {expected}")
    try:
        moment.timestamp()
        moment.astimezone()
    except (OverflowError, ValueError, OSError):
        raise UsageError(f"{text!r} is out of range") from None
    return moment


def index_at(times: Sequence[float], moment: float) -> int | None:
    """The latest sample at or before `moment` (the last one of equal times); None when every
    sample is later. `times` need not be sorted (a recording appended by several runs)."""
    best: int | None = None
    for index, at in enumerate(times):
        if at <= moment and (best is None or at >= times[best]):
            best = index
    return best


def pick(
    times: Sequence[float], at: float | None, command: str, value: Any, say: Callable[[str], None]
) -> int | None:
    """The sample to show for `command` ("travel" by `value` samples from `at`, None meaning
    the newest; "jump" to the latest at or before the moment `value`): an index of `times`,
    `len(times)` for live, or None to stay (after saying why)."""
    if not times:
        say("no sample yet")
        return None
    if command == "jump":
        found = index_at(times, value.timestamp())
        if found is None:
            say(f"no sample at or before {describe(value.timestamp())}; "
                f"the oldest kept is from {describe(min(times))}")  # fmt: skip
        return found
    current = len(times) - 1 if at is None else (index_at(times, at) or 0)
    found = current + int(value)
    if found < 0:
        say(f"that is the oldest sample kept (from {describe(min(times))})")
        return 0
    return found


def describe(moment: float) -> str:
    """A moment as the header shows it, with its date when that is not today."""
    local = datetime.fromtimestamp(moment, UTC).astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


class KeptPolls:
    """The recent polls of a live session, oldest first, bounded by `KEEP_POLLS` and
    `KEEP_SAMPLES`. Each is kept compressed (they are the tool's own data, so they are read
    back without the checks a recording gets); `number(i)` is a poll's number for the whole
    run, which stays the same as older polls are dropped."""

    def __init__(self, polls: int = KEEP_POLLS, samples: int = KEEP_SAMPLES) -> None:
        self.max_polls = polls
        self.max_samples = samples
        self._kept: deque[tuple[float, int, bytes]] = deque()
        self._samples = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def times(self) -> list[float]:
        return [at for at, _, _ in self._kept]

    def add(self, reading: FleetReading) -> None:
        rows = [list(instance) for instance in reading.instances]
        packed = zlib.compress(json.dumps([reading.error, rows]).encode(), 1)
        self._kept.append((reading.time.timestamp(), len(rows), packed))
        self._samples += len(rows)
        while len(self._kept) > 1 and (
            len(self._kept) > self.max_polls or self._samples > self.max_samples
        ):
            _, count, _ = self._kept.popleft()
            self._samples -= count
            self.dropped += 1

    def reading(self, index: int) -> FleetReading:
        at, _, packed = self._kept[index]
        error, rows = json.loads(zlib.decompress(packed))
        return FleetReading(
            datetime.fromtimestamp(at, UTC), [Instance(*row) for row in rows], error
        )
