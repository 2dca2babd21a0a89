"""`FleetSource`: the one seam between where the fleet is read from and what shows it.

Every command, `track`, `top`, the exporter and `--all-contexts` read the fleet through this
protocol, and `run_config.open_source` is the one place that chooses an implementation (from the
options and the context): `sources.cpx.CpxSource` (the CPX API, the bundled simulator of
`--demo` included) or `sources.prometheus.PrometheusSource`. `top --replay` reads no source.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from cli_devops.errors import CliDevopsError
from cli_devops.model import Instance, Snapshot


class Unsupported(CliDevopsError):
    """What a source was asked for and said it cannot do (see `FleetSource.keeps_history`)."""


class FleetSource(Protocol):
    """Where the fleet is read from. The contract, for every implementation:

    * Use it as `async with source:`; connections are opened on entry and closed on exit, and
      one source serves every read of a run (a live view polls the same one).
    * `name` describes it for headers and messages: the URL it reads.
    * `read(deadline=None, owns=None, at=None)` reads the whole fleet once within `deadline`
      seconds (None: the source's own `--deadline`, if any); `owns(ip)`, when given, limits the
      read to the instances it owns (an exporter's shard); `at` (Unix seconds) reads the fleet
      as it was then, from a source that `keeps_history` (the others raise `Unsupported`);
      `answer_cost` (seconds) is what the caller's answer will take per instance read (the
      exporter's), by which a source that reads instance by instance ends its read earlier. An
      instance that could not be read is in the snapshot with its `error`, those the deadline
      left unrequested last and counted in `unrequested`; what the user should be told besides
      (entries skipped, targets down) is in
      `notes`. When the fleet cannot be read at all it raises `ApiUnreachable`.
    * `keeps_history` says whether `history()` can answer; when False, `history()` raises
      `Unsupported`. `history(service, start, end, step)` gives the instances of `service`
      (every service's when None) at each step from `start` to `end` (Unix seconds).
    * `focus(service)` is a hint that later reads need only `service`'s figures; a source may
      ignore it (the reader still filters by service).
    """

    @property
    def name(self) -> str: ...

    @property
    def keeps_history(self) -> bool: ...

    async def __aenter__(self) -> FleetSource: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def read(
        self,
        deadline: float | None = None,
        owns: Callable[[str], bool] | None = None,
        at: float | None = None,
        answer_cost: float = 0.0,
    ) -> Snapshot: ...

    async def history(
        self, service: str | None, start: float, end: float, step: float
    ) -> list[tuple[float, list[Instance]]]: ...

    def focus(self, service: str | None) -> None: ...
