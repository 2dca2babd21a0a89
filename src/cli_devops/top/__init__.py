"""`top`: the interactive fleet console (fleet, service and instance screens).

Importing this package does not import Textual; `top()` does, when the console starts.
"""

from cli_devops.top.command import TopOptions, top
from cli_devops.top.source import FleetReading

__all__ = ["FleetReading", "TopOptions", "top"]
