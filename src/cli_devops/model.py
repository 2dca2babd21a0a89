"""The CPX data model and the parsing of untrusted API answers into it.

Everything the API sends passes through `parse_servers` or `parse_instance` before the rest of
the tool sees it; both reject anything that is not exactly what the API promises, with a short
reason a user can act on.
"""

from __future__ import annotations

import array
import ipaddress
import itertools
import json
import math
import operator
import re
import socket
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter
from typing import NamedTuple, overload

from cli_devops.errors import PayloadError

MAX_SERVICE_NAME = 256
MAX_CONTAINERS = 10_000
MAX_DEPTH = 64
MAX_PERCENT_TEXT = 64
"""Longest percentage string read ("61.5%" needs five characters; 10,000 digits need none)."""
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class Instance(NamedTuple):
    """One instance as read from the API. `cpu`/`memory` are percent, None when not read.

    `error` is None when the answer was valid, else the reason it was not; `service` may still be
    known when only the figures were invalid.
    """

    ip: str
    service: str | None
    cpu: float | None
    memory: float | None
    error: str | None = None


class InstanceList(Sequence[Instance]):
    """The instances of one read in the listing's order: those requested, then those a deadline
    left unrequested, which are alike but for the IP (`Instance(ip, None, None, None, reason)`).
    The unrequested ones are made only when asked for one by one, so a million of them cost a
    list of IPs, not a million objects; code that knows this (grouping by service, the reasons
    for unread instances, an instance report) takes `requested` and `unrequested` as they are.
    """

    def __init__(
        self, requested: list[Instance], unrequested: Sequence[str] = (), reason: str = ""
    ) -> None:
        self.requested = requested
        self.unrequested = unrequested
        self.reason = reason

    def __len__(self) -> int:
        return len(self.requested) + len(self.unrequested)

    def __iter__(self) -> Iterator[Instance]:
        yield from self.requested
        yield from unread_instances(self.unrequested, self.reason)

    @overload
    def __getitem__(self, index: int) -> Instance: ...

    @overload
    def __getitem__(self, index: slice) -> list[Instance]: ...

    def __getitem__(self, index: int | slice) -> Instance | list[Instance]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1 and stop <= len(self.requested):
                return self.requested[start:stop]  # the exporter's: the requested ones only
            return list(self)[index]
        position = index + len(self) if index < 0 else index
        if 0 <= position < len(self.requested):
            return self.requested[position]
        position -= len(self.requested)
        if 0 <= position < len(self.unrequested):
            return Instance(self.unrequested[position], None, None, None, self.reason)
        raise IndexError(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, InstanceList)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return (
            f"InstanceList({len(self.requested)} requested, "
            f"{len(self.unrequested)} unrequested: {self.reason!r})"
        )

    def errors(self) -> Counter[str | None]:
        """How many instances have each error (None: read)."""
        counted = Counter(map(attrgetter("error"), self.requested))
        if self.unrequested:
            counted[self.reason] += len(self.unrequested)
        return counted

    def unread(self) -> InstanceList:
        """The instances that could not be read (the unrequested ones among them)."""
        errors = map(attrgetter("error"), self.requested)
        failed = map(operator.is_not, errors, itertools.repeat(None))
        return InstanceList(
            list(itertools.compress(self.requested, failed)), self.unrequested, self.reason
        )


def unread_instances(ips: Iterable[str], reason: str) -> Iterator[Instance]:
    """`Instance(ip, None, None, None, reason)` for each IP, built in a C loop."""
    blank = itertools.repeat(None)
    rows = zip(ips, blank, blank, blank, itertools.repeat(reason))
    return map(tuple.__new__, itertools.repeat(Instance), rows)


class Snapshot(NamedTuple):
    """One read of the whole fleet; instances sorted by IP, those the deadline left unrequested
    (`unrequested` of them, with the deadline's reason) last. `notes`: what the reader should
    tell the user besides (entries skipped, targets down)."""

    instances: Sequence[Instance]
    skipped: int
    duplicates: int
    unrequested: int = 0
    notes: tuple[str, ...] = ()

    @property
    def unread(self) -> Sequence[Instance]:
        if isinstance(self.instances, InstanceList):
            return self.instances.unread()
        return [instance for instance in self.instances if instance.error is not None]


class ServerList(NamedTuple):
    """The usable part of a /servers answer: IPs in numeric order, each once."""

    ips: list[str]
    skipped: int
    duplicates: int


def parse_percent(value: object, field: str) -> float:
    """Read a percentage as the API writes it ("61%", "61", 61, "61.5%") and check 0-100.

    Whole numbers come back as int so that JSON output shows the API's 61 as 61, not 61.0.
    Never raises anything but PayloadError, whatever JSON value it is given (integers of any
    size, floats that overflowed to infinity, strings of digits, containers).
    """
    if value is None:
        raise PayloadError(f"{field} is missing")
    if isinstance(value, bool):
        raise PayloadError(f"{field} is not a percentage")
    if isinstance(value, int):
        if not 0 <= value <= 100:  # checked as an int: a 400-digit one has no float
            raise PayloadError(f"{field} is outside 0-100%")
        number = float(value)
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            text = text[:-1].rstrip()
        if len(text) > MAX_PERCENT_TEXT or not _DECIMAL.fullmatch(text):
            raise PayloadError(f"{field} is not a percentage")
        number = float(text)
    else:
        raise PayloadError(f"{field} is not a percentage")
    if math.isnan(number):
        raise PayloadError(f"{field} is not a number")
    if math.isinf(number):
        raise PayloadError(f"{field} is outside 0-100%")
    if not 0.0 <= number <= 100.0:
        raise PayloadError(f"{field} is outside 0-100%")
    return int(number) if number.is_integer() else number


def parse_service(value: object) -> str:
    """The service name as sent; it must be a string with something printable in it."""
    if value is None:
        raise PayloadError("service is missing")
    if not isinstance(value, str):
        raise PayloadError("service is not a string")
    if len(value) > MAX_SERVICE_NAME:
        raise PayloadError(f"service is longer than {MAX_SERVICE_NAME} characters")
    if not any(char.isprintable() and not char.isspace() for char in value):
        raise PayloadError("service is empty or has no printable characters")
    return value


def parse_instance(ip: str, payload: object) -> Instance:
    """Validate one `GET /<ip>` answer.

    Never raises: an invalid answer becomes an instance with `error` set (shown as Unknown).
    """
    if not isinstance(payload, dict):
        return Instance(ip, None, None, None, "answer is not a JSON object")
    try:
        service = parse_service(payload.get("service"))
    except PayloadError as err:
        return Instance(ip, None, None, None, str(err))
    try:
        cpu = parse_percent(payload.get("cpu"), "cpu")
        memory = parse_percent(payload.get("memory"), "memory")
    except PayloadError as err:
        return Instance(ip, service, None, None, str(err))
    return Instance(ip, service, cpu, memory)


def decode_json(body: bytes) -> object:
    """Decode an answer body; PayloadError says why it is not usable JSON.

    Input nested deeper than `MAX_DEPTH` (`[[[[...`) is rejected, whether or not this Python's
    parser would have run out of stack first (3.13's does not), and so is a body of many small
    arrays or objects (`[[],[],...]`), which would take dozens of times its size in memory; no
    valid answer has more than a few of either.
    """
    containers = body.count(b"[") + body.count(b"{")
    if containers > MAX_CONTAINERS:
        raise PayloadError("answer has too many arrays or objects")
    try:
        value = json.loads(body)
    except RecursionError:
        raise PayloadError("answer is nested too deeply") from None
    except ValueError:
        raise PayloadError("answer is not valid JSON") from None
    if containers > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise PayloadError("answer is nested too deeply")
    return value


def _deeper_than(value: object, limit: int) -> bool:
    """Whether lists and objects nest more than `limit` levels (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (list, dict)):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def _address(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address if `entry` is a plain IPv4/IPv6 literal (safe in a URL path), else None."""
    if not entry or len(entry) > 45 or "%" in entry:
        return None
    try:
        return ipaddress.ip_address(entry)
    except ValueError:
        return None


def parse_servers(payload: object) -> ServerList:
    """Validate a `GET /servers` answer: a JSON list whose entries are IP addresses.

    Entries that are not IP addresses are skipped (never requested); duplicates are kept once.
    The IPs come back in numeric order (`ip_sort_key`), each parsed once: at fleet scale the
    parsing is a visible share of a run. Raises PayloadError when the answer is not a list.
    """
    if not isinstance(payload, list):
        raise PayloadError("/servers did not answer a JSON list")
    plain = _plain_ipv4(payload)
    if plain is not None:
        return plain
    keyed: dict[int, str] = {}
    skipped = duplicates = 0
    for entry in payload:
        if not isinstance(entry, str):
            skipped += 1
            continue
        key = _ipv4_order(entry)
        if key is None:
            address = _address(entry)
            if address is None:
                skipped += 1
                continue
            key = _order(address)
        if key in keyed:
            duplicates += 1
            continue
        keyed[key] = entry
    return ServerList([keyed[key] for key in sorted(keyed)], skipped, duplicates)


def _plain_ipv4(payload: list[object]) -> ServerList | None:
    """`parse_servers` of a listing of dotted-quad IPv4 addresses only (every CPX fleet's common
    case), in loops that run in C: a million entries in a fraction of a second. None when any
    entry is something else (then each entry is decided on its own).

    An entry is accepted when `inet_aton` reads it and `inet_ntoa` writes it back unchanged,
    which is exactly the canonical form `ipaddress` accepts (no octal, hex, short forms,
    leading zeros or trailing text)."""
    try:
        packed = list(map(socket.inet_aton, payload))  # type: ignore[arg-type]
    except (OSError, TypeError, ValueError):
        return None
    if list(map(socket.inet_ntoa, packed)) != payload:
        return None
    values = array.array("I", b"".join(packed))  # the addresses as numbers, in one C call
    if sys.byteorder == "little":
        values.byteswap()
    if all(map(operator.lt, values, itertools.islice(values, 1, None))):
        return ServerList(payload, 0, 0)  # type: ignore[arg-type]  # already in order, once each
    keyed = dict(zip(values, payload, strict=True))
    ordered = list(map(keyed.__getitem__, sorted(keyed)))
    return ServerList(ordered, 0, len(payload) - len(keyed))  # type: ignore[arg-type]


def _ipv4_order(entry: str) -> int | None:
    """`_order` of a plain dotted-quad IPv4 address, three times faster than `ipaddress`; None
    for anything else, which `ipaddress` then decides. Accepts exactly what `ipaddress`
    accepts: four ASCII decimal octets up to 255, no leading zeros."""
    parts = entry.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (0 < len(part) <= 3 and part.isascii() and part.isdigit()):
            return None
        if part[0] == "0" and len(part) > 1:
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value


def ip_sort_key(ip: str) -> tuple[int, int]:
    """Numeric order: IPv4 before IPv6, then by address value."""
    address = ipaddress.ip_address(ip)
    return (address.version, int(address))


def _order(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """One integer in numeric order, IPv4 (below 2**32) before IPv6 (above it)."""
    if address.version == 4:
        return int(address)
    return (1 << 32) + int(address)
