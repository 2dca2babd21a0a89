"""An instance report's records held as runs of records that differ only in their IP (built by
`reports.instances_report`), and the lines of a run, written by putting each IP into one
formatted line.

After a deadline at a million instances nearly all of them are unread for the same reason, so
one run holds them: the run's line is formatted once and the IPs are put in by one C loop
(`str.join`). A record and a formatted line per instance, a Python-level call
each, would take longer than the second the deadline leaves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, overload

from cli_devops.render.report import Record

MARK = "cli-devops-ip-mark"
"""Stands for the IP while a run's line is formatted. A line that holds it more than once (a
service of that name) is written record by record instead."""
CHUNK = 8192
"""Lines joined into one write."""
PLAIN_IP = re.compile(r"[0-9A-Fa-f.:]+")
"""IPs that every format writes as they are (nothing to escape, quote or cut)."""


class RecordRun(NamedTuple):
    """Records alike but for their IP: `fields` are all of a record's fields after "ip"."""

    ips: list[str]
    fields: Record

    def record(self, ip: str) -> Record:
        return {"ip": ip, **self.fields}


class RecordRuns(Sequence[Record]):
    """The records of runs, in order: a sequence of records to anyone who iterates it, and
    runs to the writers that know them."""

    def __init__(self, runs: list[RecordRun]) -> None:
        self.runs = runs
        self._length = sum(len(run.ips) for run in runs)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Record]:
        for run in self.runs:
            for ip in run.ips:
                yield run.record(ip)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return list(self)[index]
        position = index + self._length if index < 0 else index
        for run in self.runs:
            if 0 <= position < len(run.ips):
                return run.record(run.ips[position])
            position -= len(run.ips)
        raise IndexError(index)


def run_pieces(
    records: Sequence[Record], line: Callable[[Record], str], separator: str
) -> Iterator[str]:
    """`separator.join(line(record) for record in records)`, in pieces of up to CHUNK lines (to
    be joined by `separator` again): a run of records formatted once when its IPs need no
    escaping in any format, record by record otherwise."""
    runs = records.runs if isinstance(records, RecordRuns) else [None]
    pending: list[str] = []
    for run in runs:
        if run is None:
            lines: Iterable[str] = map(line, records)
        else:
            template = _template(run, line)
            if template is not None:
                if pending:
                    yield separator.join(pending)
                    pending = []
                before, after = template
                joint = after + separator + before
                for start in range(0, len(run.ips), CHUNK):
                    yield before + joint.join(run.ips[start : start + CHUNK]) + after
                continue
            lines = map(line, map(run.record, run.ips))
        for text in lines:
            pending.append(text)
            if len(pending) >= CHUNK:
                yield separator.join(pending)
                pending = []
    if pending:
        yield separator.join(pending)


def _template(run: RecordRun, line: Callable[[Record], str]) -> tuple[str, str] | None:
    """The run's line before and after the IP, or None when it cannot be written so."""
    if len(run.ips) < 2 or not PLAIN_IP.fullmatch("".join(run.ips)):
        return None
    text = line(run.record(MARK))
    if text.count(MARK) != 1:
        return None
    before, after = text.split(MARK)
    return before, after
