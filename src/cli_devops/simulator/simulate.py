"""``serve()``: the blocking core of ``cli_devops simulate``, which starts and stops one server."""

from __future__ import annotations

from typing import TextIO

from cli_devops.serving import serve_until_stopped
from cli_devops.simulator.faults import CHAOS_JUNK, CHAOS_RATE, Faults
from cli_devops.simulator.fleet import Fleet
from cli_devops.simulator.reference import ReferenceServer
from cli_devops.simulator.server import SimulatorServer
from cli_devops.simulator.workers import SimulatorWorkers


def _fault_notes(
    latency_ms: float, fail_rate: float, slow_rate: float, slow_ms: float, chaos: bool
) -> list[str]:
    notes = [f"{latency_ms:g} ms latency"] if latency_ms > 0 else []
    if fail_rate > 0:
        notes.append(f"{fail_rate:.0%} failing")
    if slow_rate > 0:
        notes.append(f"{slow_rate:.0%} stalling {slow_ms:g} ms")
    if chaos:
        notes.append("chaos")
    return notes


class CannotAnnounce(Exception):
    """The line saying where the server listens could not be written (`out` is full or
    closed); `args[0]` is the OSError. Not an OSError itself, so it is never taken for a
    bind failure."""


def serve(  # noqa: PLR0913 -- one keyword per option of the simulate command
    *,
    host: str,
    port: int,
    fleet_size: int,
    seed: int | None,
    reference: bool,
    latency_ms: float,
    out: TextIO,
    fail_rate: float = 0.0,
    slow_rate: float = 0.0,
    slow_ms: float = 10_000.0,
    chaos: bool = False,
    workers: int = 1,
) -> None:
    """Run a server until Ctrl+C: the blocking core of ``cli_devops simulate``.

    Writes one line to ``out`` saying where it listens, then waits; SIGTERM or SIGHUP (once
    it listens, when called from the main thread) stops the server cleanly and returns;
    KeyboardInterrupt stops it cleanly and is raised on (Ctrl+C is exit 130). With
    ``workers`` above 1 the simulator is served by that many processes
    (:class:`SimulatorWorkers`; fault attempt counters are then per worker). With ``reference``
    the fixed reference fleet is served, so ``fleet_size``, ``seed``, ``latency_ms`` and the
    faults do not apply (and ``workers`` must be 1). The faults are the :class:`Faults` plan
    under the fleet's seed; ``chaos`` also adds :data:`CHAOS_JUNK` to ``/servers``. Bind failures
    (port in use) raise :class:`OSError` for the caller to report.
    """
    if reference and workers != 1:
        raise ValueError("the reference server is single-threaded: it has no workers")
    server: SimulatorServer | SimulatorWorkers | ReferenceServer
    if reference:
        server = ReferenceServer(host, port)
        url = server.start()
        line = (
            f"CPX reference server listening on {url} "
            f"({len(server.fleet.instances)} instances, single-threaded HTTP/1.0)"
        )
    else:
        fleet = Fleet.generate(fleet_size, seed)
        faults = (
            Faults(fail_rate, slow_rate, slow_ms, CHAOS_RATE if chaos else 0.0, fleet.seed)
            if fail_rate > 0 or slow_rate > 0 or chaos
            else None
        )
        if chaos:
            fleet.junk_servers = list(CHAOS_JUNK)
        if workers > 1:
            server = SimulatorWorkers(
                fleet, host, port, workers, latency_ms=latency_ms, faults=faults
            )
        else:
            server = SimulatorServer(fleet, host, port, latency_ms=latency_ms, faults=faults)
        url = server.start()
        notes = [f"{workers} worker processes"] if workers > 1 else []
        notes += _fault_notes(latency_ms, fail_rate, slow_rate, slow_ms, chaos)
        line = (
            f"CPX simulator listening on {url} "
            f"({len(fleet.instances)} instances, seed {fleet.seed}"
            f"{''.join(', ' + note for note in notes)}); press Ctrl+C to stop"
        )
    try:
        try:
            out.write(line + "\n")
            out.flush()
        except OSError as err:  # not a bind failure: the caller reports those as OSError
            raise CannotAnnounce(err) from None
        serve_until_stopped(lambda: server.wait(0))
    finally:
        server.stop()
