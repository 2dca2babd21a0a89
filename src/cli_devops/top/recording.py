"""`--record` and `--replay`: one JSON object per poll, appended as the polls come.

    {"time": "2026-12-04T17:00:00.000Z",
     "instances": [{"ip": "10.0.0.1", "service": "Api", "cpu": 61, "memory": 40, "error": null}],
     "error": null}

A recording is read as untrusted input: every line is checked as strictly as an API answer, and
a line that is not exactly a poll (cut short by a crash, edited, corrupt) is skipped and counted,
never half-used.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from cli_devops.errors import PayloadError
from cli_devops.files import OutputFile
from cli_devops.model import Instance, parse_percent, parse_service
from cli_devops.polling import rfc3339
from cli_devops.top.source import FleetReading

MAX_REASON = 1000
"""Longest error reason kept from a recording."""
MAX_LINE = 64 * 1024 * 1024
"""Longest line read: a poll of 100,000 instances is about 10 MiB; a longer line is skipped
unread, so a file without line breaks cannot fill the memory."""


def encode(reading: FleetReading) -> str:
    """The recording line of one poll (without its newline)."""
    return json.dumps(
        {
            "time": rfc3339(reading.time),
            "instances": [
                {
                    "ip": i.ip,
                    "service": i.service,
                    "cpu": i.cpu,
                    "memory": i.memory,
                    "error": i.error,
                }
                for i in reading.instances
            ],
            "error": reading.error,
        },
        ensure_ascii=False,
    )


class Recorder:
    """Appends each poll to the recording as one unbuffered write, so a crash loses one poll at
    most and a full disk is a CannotWrite at the poll that did not fit."""

    def __init__(self, output: OutputFile) -> None:
        self.output = output

    def write(self, reading: FleetReading) -> None:
        self.output.write_line(encode(reading))

    def close(self) -> None:
        self.output.close()


@dataclass(frozen=True)
class Recording:
    readings: list[FleetReading]
    skipped: int
    """Lines that were not a valid poll (blank lines are not counted)."""


def read_recording(lines: Iterable[bytes]) -> Recording:
    """Every valid poll of a recording, in file order, and the count of lines that were not."""
    readings: list[FleetReading] = []
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            readings.append(decode(line.decode("utf-8")))
        except (PayloadError, UnicodeDecodeError):
            skipped += 1
    return Recording(readings, skipped)


def bounded_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of `stream`, a line longer than MAX_LINE given as one invalid line instead."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            del line
            while True:  # the rest of the line, a small piece at a time
                piece = stream.readline(64 * 1024)
                if not piece or piece.endswith(b"\n"):
                    break
            yield b"{too long}\n"
        else:
            yield line


def decode(line: str) -> FleetReading:
    """One recording line back into a `FleetReading`; PayloadError says why it is not one."""
    try:
        value = json.loads(line)
    except RecursionError:
        raise PayloadError("nested too deeply") from None
    except ValueError:
        raise PayloadError("not valid JSON") from None
    if not isinstance(value, dict) or set(value) != {"time", "instances", "error"}:
        raise PayloadError("not a recorded poll")
    instances = value["instances"]
    if not isinstance(instances, list):
        raise PayloadError("instances is not a list")
    return FleetReading(
        _time(value["time"]),
        [_instance(item) for item in instances],
        _reason(value["error"]),
    )


def _time(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise PayloadError("time is not a timestamp")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError("time is not a timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:  # year 1 at +23:59 is before year 1 in UTC: the console could not show it
        moment.astimezone(UTC)
        moment.astimezone()
        moment.timestamp()
    except (OverflowError, ValueError, OSError):
        raise PayloadError("time is not a timestamp") from None
    return moment


def _reason(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError("error is not a string")
    return value[:MAX_REASON]


def _instance(item: object) -> Instance:
    if not isinstance(item, dict) or set(item) != {"ip", "service", "cpu", "memory", "error"}:
        raise PayloadError("not a recorded instance")
    ip = item["ip"]
    if not isinstance(ip, str) or len(ip) > 45 or "%" in ip:
        raise PayloadError("ip is not an IP address")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise PayloadError("ip is not an IP address") from None
    service = None if item["service"] is None else parse_service(item["service"])
    cpu = None if item["cpu"] is None else parse_percent(item["cpu"], "cpu")
    memory = None if item["memory"] is None else parse_percent(item["memory"], "memory")
    return Instance(ip, service, cpu, memory, _reason(item["error"]))
