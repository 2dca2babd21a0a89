"""`watch`: changes of the fleet's health as events, on stdout and to a command, a webhook or
Alertmanager. `command.watch` is the entry point; `detector` holds the rules, `events` the
format (docs/watch.md)."""

from cli_devops.watch.command import WatchOptions, watch
from cli_devops.watch.deliveries import Receivers
from cli_devops.watch.events import KINDS, Event

__all__ = ["KINDS", "Event", "Receivers", "WatchOptions", "watch"]
