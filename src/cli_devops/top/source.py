"""`FleetReading`: what one poll of the console holds, from a live `FleetSource` (the seam in
`sources/base.py`) or from a recording; the console never talks to an API itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cli_devops.model import Instance


@dataclass(frozen=True)
class FleetReading:
    """One poll of the whole fleet: the instances as read (an unreadable one carries its
    `error`), or no instances and the poll's `error` when the fleet could not be read at all."""

    time: datetime
    instances: Sequence[Instance]
    error: str | None = None
