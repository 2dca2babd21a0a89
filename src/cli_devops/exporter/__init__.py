"""The Prometheus exporter: `/metrics` reads CPX at scrape time and answers in the text format.

* `collector.py`: the shard, the scrape's deadline and the metric families, built fresh from
  one reading by `CpxCollector` on the exporter's own registry (no gauge set on a timer);
* `reader.py`: `FleetReader`, the reads of CPX (one loop thread, one open client) and which
  scrape may share which read;
* `options.py`: where and how it serves (the exporter toolkit's `--web.*` flags), parsed;
* `events.py`: its log, one logfmt or JSON line per event;
* `server.py`: the HTTP server, `Exporter` and the `exporter` command (`run_exporter`);
* `web_config.py`: the `--web.config.file` (TLS and basic auth), checked at start.

prometheus_client is imported here only, and this package only by the `exporter` command.
"""

from cli_devops.exporter.collector import (
    DEADLINE_MARGIN,
    MAX_SCRAPE_TIMEOUT,
    CpxCollector,
    Shard,
    ShardReading,
    build_metrics,
    parse_shard,
    scrape_deadline,
    shard_of,
)
from cli_devops.exporter.events import EventLog
from cli_devops.exporter.options import (
    ServeOptions,
    parse_addresses,
    parse_listen,
    parse_telemetry_path,
)
from cli_devops.exporter.reader import ExporterStopping, FleetReader
from cli_devops.exporter.server import (
    Exporter,
    accepts_gzip,
    run_exporter,
)

__all__ = [
    "DEADLINE_MARGIN",
    "MAX_SCRAPE_TIMEOUT",
    "CpxCollector",
    "EventLog",
    "Exporter",
    "ExporterStopping",
    "FleetReader",
    "ServeOptions",
    "Shard",
    "ShardReading",
    "accepts_gzip",
    "build_metrics",
    "parse_addresses",
    "parse_listen",
    "parse_shard",
    "parse_telemetry_path",
    "run_exporter",
    "scrape_deadline",
    "shard_of",
]
