"""Stand-ins for the CPX API: a fast concurrent simulator and a replica of the reference server.

Both answer the two endpoints of the real API from a :class:`Fleet`:

* ``GET /servers`` -> 200, JSON list of instance IPs;
* ``GET /<ip>`` -> 200, ``{"cpu": "61%", "memory": "4%", "service": "UserService"}``;
* anything else -> 400 ``{"error": "Invalid IP"}``.

:class:`SimulatorServer` is the load-bearing one: tests and benchmarks drive it at thousands of
requests per second, so it speaks a deliberately small subset of HTTP/1.1 directly on
:class:`asyncio.Protocol`; :class:`SimulatorWorkers` runs it in several processes on one port.
:class:`ReferenceServer` reproduces the challenge's slow server (single-threaded
``http.server``, HTTP/1.0, backlog 5) so the client can be tested against the behaviour it will
really meet. :class:`SimulatorServer` also injects faults for the resilience tests (a
:class:`FaultPlan`; :class:`Faults` is the seeded plan of ``simulate``). Only the standard
library is used, to keep imports cheap, and nothing of the client side.

Modules: ``fleet`` (the fleet model and answer bodies), ``faults`` (faults, the seeded plan and
the chaos catalogue), ``protocol`` (HTTP on one connection), ``server`` (the asyncio server),
``workers`` (several processes), ``reference`` (the reference-server replica), ``simulate``
(:func:`serve`, the core of ``cli_devops simulate``).
"""

from cli_devops.simulator.faults import (
    CHAOS,
    CHAOS_JUNK,
    CHAOS_RATE,
    CHAOS_VALUES,
    EVIL_SERVICE,
    Fault,
    FaultPlan,
    Faults,
)
from cli_devops.simulator.fleet import (
    REFERENCE_SERVICES,
    SERVICE_NAMES,
    Flap,
    Fleet,
    SimInstance,
    reference_service,
)
from cli_devops.simulator.protocol import MAX_HEADER_BYTES
from cli_devops.simulator.reference import ReferenceServer
from cli_devops.simulator.server import SimulatorServer
from cli_devops.simulator.simulate import serve
from cli_devops.simulator.workers import WORKERS_SUPPORTED, SimulatorWorkers

__all__ = [
    "CHAOS",
    "CHAOS_JUNK",
    "CHAOS_RATE",
    "CHAOS_VALUES",
    "EVIL_SERVICE",
    "MAX_HEADER_BYTES",
    "REFERENCE_SERVICES",
    "SERVICE_NAMES",
    "WORKERS_SUPPORTED",
    "Fault",
    "FaultPlan",
    "Faults",
    "Flap",
    "Fleet",
    "ReferenceServer",
    "SimInstance",
    "SimulatorServer",
    "SimulatorWorkers",
    "reference_service",
    "serve",
]
