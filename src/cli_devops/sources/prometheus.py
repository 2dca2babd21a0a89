"""The fleet read from Prometheus (or anything speaking its query API) instead of from CPX.

The exporter's shards put every instance in Prometheus as `cpx_instance_scrape_success{ip}`,
`cpx_instance_cpu_usage_ratio{ip, cpx_service}` and `cpx_instance_memory_usage_ratio`, beside
each shard's `cpx_up` and Prometheus's own `up` per target. One read is five queries evaluated
at one moment (`time=`), run concurrently, and a sixth when a target is down:

* `up{sel}[lookback]` and `cpx_up{sel}[lookback]`: per target, whether it was scraped
  (`up`), whether its exporter read CPX (`cpx_up`), and the age of its last sample against
  its scrape interval (the median gap between its samples);
* the current CPU and memory series (exported exactly for the instances the exporter read),
  and the `cpx_instance_scrape_success` series that are not 1 (the instances it could not);
* only when a target is not current, `last_over_time(cpx_instance_scrape_success{sel}[lookback])`:
  every instance seen lately, so the instances of a shard that is down are reported (Unknown),
  not dropped.

An instance is read when its target is current and its figures are present; Unknown with the
exporter's word when `cpx_instance_scrape_success` is 0; Unknown naming the target when the
target is down or stale; and left out when its target is current but no longer exports it (it
left the fleet, as `/servers` would say). Figures are turned back into the percentages CPX
sent and checked like CPX answers; health is decided by `health.py`, not in PromQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote, urlencode

from cli_devops.client import HttpFailure, HttpSession, ReadBudget, Snapshot
from cli_devops.errors import ApiUnreachable, PayloadError
from cli_devops.model import Instance
from cli_devops.settings import PrometheusSettings
from cli_devops.sources.prometheus_api import (
    InstanceSample,
    Labels,
    Range,
    parse_instance_vector,
    parse_matrix,
)
from cli_devops.sources.prometheus_fleet import (
    CPU,
    MEMORY,
    SCRAPE_SUCCESS,
    PrometheusRead,
    assemble,
    history_steps,
    target_states,
)
from cli_devops.sources.promql import rfc3339, with_matcher
from cli_devops.text import plural

MAX_ANSWER = 1024 * 1024 * 1024
"""Bytes of one query answer: 100,000 instances are about 15 MB per query."""
_T = TypeVar("_T")


class PrometheusSource:
    """The `FleetSource` of one Prometheus; `async with PrometheusSource(settings) as source`.
    It keeps history (range queries), and reads the fleet at `settings.at` when that is set.

    It reads through the client's HTTP layer (pool, TLS, timeouts, the retry loop and budget,
    deadline), as the CPX client does.
    """

    keeps_history = True

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self.base_url = settings.client.base_url
        self._http = HttpSession(settings.client, settings.client.log)
        self._service: str | None = None
        self.requests = 0

    @property
    def name(self) -> str:
        return self.base_url

    async def __aenter__(self) -> PrometheusSource:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    def _series(self, metric: str) -> str:
        return metric + self.settings.selector

    async def read(
        self,
        deadline: float | None = None,
        owns: Callable[[str], bool] | None = None,
        at: float | None = None,
        answer_cost: float = 0.0,
    ) -> Snapshot:
        """The fleet as Prometheus sees it (at `at`, else at `settings.at` when set); the
        targets down and the series skipped are the snapshot's notes. One query answers for the
        whole fleet, so `answer_cost` changes nothing."""
        read = await self.read_at(self.settings.at if at is None else at, deadline)
        snapshot = read.snapshot
        instances = snapshot.instances
        if owns is not None:
            instances = [instance for instance in instances if owns(instance.ip)]
        notes = list(read.down)
        if snapshot.skipped:
            what = (
                "whose ip label is not an IP address"
                if snapshot.skipped == 1
                else "whose ip labels are not IP addresses"
            )
            notes.append(f"skipped {plural(snapshot.skipped, 'series', 'series')} {what}")
        return snapshot._replace(instances=instances, notes=tuple(notes))

    async def read_at(
        self, at: float | None = None, deadline: float | None = None
    ) -> PrometheusRead:
        """The fleet as Prometheus saw it at `at` (Unix seconds; now when None)."""
        moment = time.time() if at is None else at
        budget = self._begin(deadline)
        lookback = f"[{self.settings.lookback:g}s]"
        instant = {"time": f"{moment:.3f}"}
        targets: dict[Labels, Labels] = {}
        up, cpx_up, failed, cpu, memory = await asyncio.gather(
            self._query_matrix(self._series("up") + lookback, instant, budget),
            self._query_matrix(self._series("cpx_up") + lookback, instant, budget),
            self._query(self._series(SCRAPE_SUCCESS) + " != 1", instant, targets, budget),
            self._query(CPU + self._figures_selector(), instant, targets, budget),
            self._query(MEMORY + self._figures_selector(), instant, targets, budget),
        )
        if not cpx_up:
            raise ApiUnreachable(
                f"Prometheus at {self.base_url} has no {self._series('cpx_up')} series in the "
                f"{self.settings.lookback:g}s before {rfc3339(moment)}: it scrapes no exporter"
                + (" that the selector matches" if self.settings.selector else ""),
                kind="prometheus",
            )
        states = target_states(up, cpx_up, moment)
        known: list[InstanceSample] = []
        if any(reason is not None for reason in states.values()):
            # Only then can an instance be missing from the current series and still be in the
            # fleet: its last values in the lookback say it was there.
            promql = f"last_over_time({self._series(SCRAPE_SUCCESS)}{lookback})"
            known = await self._query(promql, instant, targets, budget)
        return assemble(states, known, failed, cpu, memory)

    def focus(self, service: str | None) -> None:
        """Read only `service`'s figures from now on (None: every service's). The instances of
        other services are then left out, except those Unknown for want of a reading, which
        have no service anyway: what a view of one service shows is unchanged, at a fraction
        of the answer's size."""
        self._service = service

    def _figures_selector(self) -> str:
        if self._service is None:
            return self.settings.selector
        return with_matcher(self.settings.selector, "cpx_service", self._service)

    async def history(
        self, service: str | None, start: float, end: float, step: float
    ) -> list[tuple[float, list[Instance]]]:
        """The instances of `service` (every service's when None) at every `step` from `start`
        to `end`: those with figures at that moment (an instance whose target was down then is
        missing from that step)."""
        budget = self._begin()
        selector = self.settings.selector
        if service is not None:
            selector = with_matcher(selector, "cpx_service", service)
        window = {"start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        cpu, memory = await asyncio.gather(
            self._query_range(CPU + selector, window, budget),
            self._query_range(MEMORY + selector, window, budget),
        )
        return history_steps(cpu, memory)

    async def _query(
        self,
        promql: str,
        params: dict[str, str],
        targets: dict[Labels, Labels],
        budget: ReadBudget,
    ) -> list[InstanceSample]:
        body = await self._get("/api/v1/query", {"query": promql, **params}, budget)
        return self._parsed(lambda answer: parse_instance_vector(answer, targets), body)

    async def _query_matrix(
        self, promql: str, params: dict[str, str], budget: ReadBudget
    ) -> list[Range]:
        body = await self._get("/api/v1/query", {"query": promql, **params}, budget)
        return self._parsed(parse_matrix, body)

    async def _query_range(
        self, promql: str, params: dict[str, str], budget: ReadBudget
    ) -> list[Range]:
        body = await self._get("/api/v1/query_range", {"query": promql, **params}, budget)
        return self._parsed(parse_matrix, body)

    def _parsed(self, parse: Callable[[bytes], list[_T]], body: bytes) -> list[_T]:
        try:
            return parse(body)
        except PayloadError as err:
            reason = f"unusable answer from Prometheus at {self.base_url}: {err}"
            raise ApiUnreachable(reason, kind="prometheus") from None

    def _begin(self, deadline: float | None = None) -> ReadBudget:
        """One read's retries and deadline (the settings' deadline when None)."""
        client = self.settings.client
        return ReadBudget(client.retries, client.deadline if deadline is None else deadline)

    async def _get(self, path: str, params: dict[str, str], budget: ReadBudget) -> bytes:
        params = {**params, "timeout": f"{self.settings.client.timeout:g}s"}
        self.requests += 1
        try:
            return await self._http.request(
                f"{path}?{urlencode(params, quote_via=quote)}", MAX_ANSWER, budget
            )
        except HttpFailure as err:
            if err.status in NOT_PROMETHEUS:
                reason = (
                    f"{self.base_url} does not look like Prometheus: its query API answered {err}."
                )
                raise ApiUnreachable(reason, kind="not_prometheus") from None
            refused = ", the credentials were refused" if err.status in (401, 403) else ""
            reason = f"cannot query Prometheus at {self.base_url}: {err}{refused}"
            raise ApiUnreachable(reason, kind="prometheus") from None


NOT_PROMETHEUS = (400, 404, 405)
"""Statuses Prometheus (or Thanos, VictoriaMetrics) never gives the checked queries sent here,
and a CPX API or another web server gives for `/api/v1/query`."""


def fetch_fleet(settings: PrometheusSettings, at: float | None = None) -> PrometheusRead:
    """Read the whole fleet once from Prometheus (blocking), at `at`, else `settings.at`, else
    now."""
    read: list[PrometheusRead] = []

    async def run() -> None:
        async with PrometheusSource(settings) as source:
            read.append(await source.read_at(settings.at if at is None else at))

    asyncio.run(run())
    return read[0]
