"""What a scrape exports: the shard of the fleet, the scrape's deadline, and the metric families
built fresh from one reading (prometheus_client's custom-collector pattern).

A partial scrape (the deadline came before every instance was read) has `cpx_up`, the service
counts of what was read, and per instance `cpx_instance_scrape_success` (0 for those that
failed or were cut mid-request) plus the figures of those read. Instances never requested
because the deadline came first have no series of their own: `cpx_scrape_unrequested_instances`
counts them, so a huge fleet's scrape stays small and answers within its timeout.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import math
import socket
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cli_devops.errors import SettingError
from cli_devops.health import Status, Thresholds, instance_status, summarize_services
from cli_devops.model import Instance
from cli_devops.settings import DEFAULT_SCRAPE_TIMEOUT

MAX_SCRAPE_TIMEOUT = 300.0
DEADLINE_MARGIN = 0.5
"""Seconds kept back from the scrape timeout for encoding and sending the answer."""

scrape_budget: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "cpx_scrape_deadline", default=None
)
"""The deadline of the scrape being answered, set by the HTTP handler (`collect()` takes no
arguments)."""


@dataclass
class ScrapeAnswer:
    """When the scrape's read ended and how many instances it holds, for the HTTP handler to
    learn what an answer costs per instance (`FleetReader.learn_answer_cost`)."""

    read_ended: float | None = None
    instances: int = 0

    def sent(self, learn: Callable[[int, float], None]) -> None:
        """The answer went out: `learn(instances, seconds since the read ended)`."""
        if self.read_ended is not None:
            learn(self.instances, time.monotonic() - self.read_ended)


scrape_answer: contextvars.ContextVar[ScrapeAnswer | None] = contextvars.ContextVar(
    "cpx_scrape_answer", default=None
)


@contextlib.contextmanager
def scrape_context(deadline: float) -> Iterator[ScrapeAnswer]:
    """The scrape's deadline and the record of its answer, for `collect()` (which takes no
    arguments) while the HTTP handler answers the scrape."""
    budget_token = scrape_budget.set(deadline)
    answer = ScrapeAnswer()
    answer_token = scrape_answer.set(answer)
    try:
        yield answer
    finally:
        scrape_answer.reset(answer_token)
        scrape_budget.reset(budget_token)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the instances whose IP hashes to `index` (see `shard_of`)."""

    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, ip: str) -> bool:
        return self.count == 1 or shard_of(ip, self.count) == self.index


def shard_of(ip: str, count: int) -> int:
    """The shard of an IP: CRC-32 of its packed address bytes, modulo `count`.

    Stable across processes, machines and releases (unlike Python's salted `hash()`), and the
    same for every spelling of one address (`::1` and `0:0:0:0:0:0:0:1`). The IPs come from
    `parse_servers`, already checked, so `inet_pton` packs them (as `ipaddress` would, at a
    fraction of the cost: a million IPs per scrape).
    """
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except OSError:
        packed = ipaddress.ip_address(ip).packed
    return zlib.crc32(packed) % count


MAX_SHARDS = 1024
"""Most exporters one fleet is split over: each is a process scraping CPX."""


def parse_shard(text: str) -> Shard:
    """Read `K/N` with 0 <= K < N <= MAX_SHARDS, in ASCII digits; raises UsageError otherwise.

    `int()` alone took `٣/4` (an Arabic-Indic 3), `1_0/2_0` and `0/99999999999999999999999`.
    """
    index_text, slash, count_text = text.strip().partition("/")
    if all(
        part.isascii() and part.isdigit() and len(part) <= 6 for part in (index_text, count_text)
    ):
        index, count = int(index_text), int(count_text)
    else:
        index = count = -1
    if not slash or not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
        raise SettingError(
            "shard", f"{text!r}: expected K/N with 0 <= K < N, like 0/3 (N at most {MAX_SHARDS})"
        )
    return Shard(index, count)


def scrape_deadline(timeout_header: str | None) -> float:
    """Seconds a scrape may spend reading CPX, from `X-Prometheus-Scrape-Timeout-Seconds`.

    A missing or unusable header means Prometheus's default of 10 s; a margin is kept back
    (0.5 s, or half of a timeout shorter than 1 s) so the answer still arrives in time.
    """
    timeout = DEFAULT_SCRAPE_TIMEOUT
    if timeout_header:
        try:
            value = float(timeout_header)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            timeout = min(value, MAX_SCRAPE_TIMEOUT)
    return max(timeout - DEADLINE_MARGIN, timeout / 2)


class ShardReading(NamedTuple):
    """One read of this exporter's share of the fleet. `up` is whether /servers was read;
    `unrequested` counts the instances the deadline left unrequested (not in `instances`)."""

    up: bool
    instances: Sequence[Instance]
    duration: float
    error: str | None = None
    unrequested: int = 0


def build_metrics(reading: ShardReading, thresholds: Thresholds) -> list[Metric]:
    """The CPX metric families of one reading, built fresh (pure; no state between scrapes).

    Figures are ratios 0-1. `cpx_instance_healthy` is present for instances whose figures were
    read; an instance that could not be read shows only as `cpx_instance_scrape_success 0`.
    Service counts include every instance whose service is known, so they sum across shards.
    """
    up = GaugeMetricFamily("cpx_up", "1 if the CPX API's /servers was read in this scrape, else 0.")
    up.add_metric([], 1 if reading.up else 0)
    instance_labels = ["ip", "cpx_service"]
    cpu = GaugeMetricFamily(
        "cpx_instance_cpu_usage_ratio",
        "CPU usage of the instance as reported by CPX, 0-1.",
        labels=instance_labels,
    )
    memory = GaugeMetricFamily(
        "cpx_instance_memory_usage_ratio",
        "Memory usage of the instance as reported by CPX, 0-1.",
        labels=instance_labels,
    )
    healthy = GaugeMetricFamily(
        "cpx_instance_healthy",
        f"1 if the instance's CPU is at most {thresholds.cpu:g}% and its memory at most "
        f"{thresholds.memory:g}%, else 0.",
        labels=instance_labels,
    )
    success = GaugeMetricFamily(
        "cpx_instance_scrape_success",
        "1 if the instance's figures were read in this scrape, else 0.",
        labels=["ip"],
    )
    for instance in reading.instances:
        success.add_metric([instance.ip], 0 if instance.error else 1)
        if instance.service is None or instance.cpu is None or instance.memory is None:
            continue
        labels = [instance.ip, _label(instance.service)]
        cpu.add_metric(labels, instance.cpu / 100)
        memory.add_metric(labels, instance.memory / 100)
        is_healthy = instance_status(instance, thresholds) is Status.HEALTHY
        healthy.add_metric(labels, 1 if is_healthy else 0)
    service_total = GaugeMetricFamily(
        "cpx_service_instances",
        "Instances of the service (in this exporter's shard; sum across shards).",
        labels=["cpx_service"],
    )
    service_healthy = GaugeMetricFamily(
        "cpx_service_healthy_instances",
        "Healthy instances of the service (in this exporter's shard; sum across shards).",
        labels=["cpx_service"],
    )
    for summary in summarize_services(reading.instances, thresholds):
        service_total.add_metric([_label(summary.service)], summary.instances)
        service_healthy.add_metric([_label(summary.service)], summary.healthy)
    duration = GaugeMetricFamily(
        "cpx_scrape_duration_seconds", "Time this scrape spent reading the CPX API."
    )
    duration.add_metric([], reading.duration)
    unrequested = GaugeMetricFamily(
        "cpx_scrape_unrequested_instances",
        "Instances of this shard not requested in this scrape because its deadline came first "
        "(they have no per-instance series).",
    )
    unrequested.add_metric([], reading.unrequested)
    return [
        up, cpu, memory, healthy, success, service_total, service_healthy, duration, unrequested
    ]  # fmt: skip


def _label(text: str) -> str:
    """A label value that can always be encoded (JSON may carry lone surrogates)."""
    return text.encode("utf-8", "replace").decode("utf-8")


class CpxCollector(Collector):
    """Reads CPX on every `collect()` and yields fresh families (the custom-collector protocol).

    The read's deadline comes from the scrape being answered (set by the HTTP handler in a
    context variable, since `collect()` takes no arguments), else the default.
    """

    def __init__(self, read: Callable[[float], ShardReading], thresholds: Thresholds) -> None:
        self._read = read
        self._thresholds = thresholds

    def collect(self) -> Iterable[Metric]:
        deadline = scrape_budget.get()
        reading = self._read(deadline or scrape_deadline(None))
        answer = scrape_answer.get()
        if answer is not None:
            answer.read_ended = time.monotonic()
            answer.instances = len(reading.instances)
        return build_metrics(reading, self._thresholds)

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering does not read CPX."""
        return build_metrics(ShardReading(False, [], 0.0), self._thresholds)
