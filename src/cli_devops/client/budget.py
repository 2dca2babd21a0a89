"""The limits of ONE read of the fleet: its retry budget, its deadline, and the backoff; and
what the read has done so far (`ReadProgress`), for a progress line.

A `ReadBudget` is created per read (per command run, per `track` poll, per exporter scrape) and
passed down with every request of that read, never kept on the client: two reads in flight at
once on one client (concurrent scrapes) each keep their own deadline and budget.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BACKOFF_FIRST = 0.1
"""The first wait before a retry is 0.1-0.2 s (jitter), then it doubles, up to BACKOFF_CAP."""
BACKOFF_CAP = 2.0
RETRY_AFTER_LIMIT = 10.0
"""A Retry-After longer than this is not waited for: the request fails with the reason."""
RETRY_BUDGET_MIN = 10
RETRY_BUDGET_RATIO = 0.2
"""Retries per read of the fleet: RETRY_BUDGET_MIN plus this fraction of the requests made, so a
failing API sees at most about 1.2 times the requests of a healthy one, never 1 + retries times."""
_SECONDS = re.compile(r"[0-9]{1,10}")
_jitter = random.Random()


@dataclass
class ReadProgress:
    """What one read has done so far: attempts at the listing, the instances listed (None until
    the listing is read), read (answered or given up on), failed among those, and retries."""

    listing_attempts: int = 0
    listed: int | None = None
    read: int = 0
    failed: int = 0
    retries: int = 0


class ReadBudget:
    """Retries left and the deadline of one read; `deadline` is in seconds from `since` (a
    `time.monotonic()` value, such as the start of the process), or from creation."""

    def __init__(
        self, retries: int, deadline: float | None = None, since: float | None = None
    ) -> None:
        self.progress = ReadProgress()
        self.retries = retries
        self.deadline = deadline
        start = time.monotonic() if since is None else since
        self.deadline_at = None if deadline is None else start + deadline
        self.tokens = float(RETRY_BUDGET_MIN)
        self.answer_cost = 0.0
        """Seconds the answer will take per instance read (the exporter's, to encode and send
        it): the deadline comes that much earlier with each instance read."""

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), None without a deadline."""
        if self.deadline_at is None:
            return None
        reserved = self.answer_cost * self.progress.read
        return self.deadline_at - reserved - time.monotonic()

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def reason(self) -> str:
        """Why a request was not made or not finished: the deadline."""
        return f"deadline of {self.deadline or 0:g}s reached"

    def request_made(self) -> None:
        """Each request (not attempt) earns a fraction of a retry."""
        self.tokens += RETRY_BUDGET_RATIO

    def retry_wait(
        self, retriable: bool, retry_after: float | None, retries_done: int
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the failure is final (not
        retriable, the request's retries or the read's budget spent, or the wait would pass the
        deadline). Takes a token from the budget when it allows a retry."""
        if not retriable or retries_done >= self.retries or self.tokens < 1:
            return None
        wait = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0**retries_done * _jitter.uniform(1.0, 2.0))
        if retry_after is not None:
            wait = max(wait, retry_after)
        remaining = self.remaining()
        if remaining is not None and wait >= remaining:
            return None
        self.tokens -= 1
        self.progress.retries += 1
        return wait

    @property
    def spent(self) -> bool:
        return self.tokens < 1


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks to wait (delay-seconds or an HTTP date), None if absent
    or unreadable; `now` is the current Unix time, for the date form."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return max(0.0, (moment - datetime.fromtimestamp(now, UTC)).total_seconds())
    except OverflowError:
        return None
