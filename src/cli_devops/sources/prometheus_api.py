"""Strict parsing of Prometheus HTTP API answers (`/api/v1/query`, `/api/v1/query_range`).

A Prometheus answer is untrusted input like a CPX answer: anything that is not exactly the
documented shape (`{"status": "success", "data": {"resultType": ..., "result": [...]}}`, label
sets of strings, samples `[<unix time>, "<float>"]`) is rejected as a whole with a short reason
(PayloadError). Sample values are read with Prometheus's own float syntax only (`NaN`, `+Inf`,
decimals, exponents), never with everything Python's `float()` accepts (`1_0`, `infinity`).
Whether a value makes sense (NaN, out of range) is for the caller to decide per series.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import NamedTuple, cast

from cli_devops.errors import PayloadError

Labels = tuple[tuple[str, str], ...]
"""A series' label set, sorted by name (hashable, so it can key a dict)."""

MAX_LABELS = 64
MAX_LABEL_VALUE = 4096
MAX_VALUE_TEXT = 64
MAX_ERROR_TEXT = 200
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(r"[+-]?(?:Inf|NaN|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
CONTAINERS_PER_KIB = 64
"""Arrays and objects allowed per KiB of answer (plus a floor): a real answer has about 3 per
series of 100+ bytes; `[[],[],...]` would have 340 and take dozens of times its size in memory."""


class Sample(NamedTuple):
    """One series of an instant vector: its labels and its value at `timestamp` (Unix seconds)."""

    labels: Labels
    timestamp: float
    value: float


class InstanceSample(NamedTuple):
    """One series of an instant vector of the exporter's per-instance series, reduced to what
    the fleet needs: `ip` and `service` (the `ip` and `cpx_service` labels, None when absent)
    and `target`, the other labels except `__name__`: the scrape target it came from."""

    ip: str | None
    service: str | None
    target: Labels
    timestamp: float
    value: float


INSTANCE_LABELS = frozenset(("__name__", "ip", "cpx_service"))


class Range(NamedTuple):
    """One series of a range vector (a matrix): its labels and its points in time order (at
    least one: `parse_matrix` drops a series without samples)."""

    labels: Labels
    points: list[tuple[float, float]]


def parse_vector(body: bytes) -> list[Sample]:
    """The series of an instant query answer whose result type is `vector`."""
    result = _result(body, "vector")
    samples = []
    for item in result:
        entry = _object(item, "a result")
        _only(entry, {"metric", "value"})
        timestamp, value = _point(entry.get("value"))
        samples.append(Sample(_labels(entry.get("metric")), timestamp, value))
    return samples


def parse_instance_vector(body: bytes, targets: dict[Labels, Labels]) -> list[InstanceSample]:
    """`parse_vector` for the per-instance series, in a fraction of the memory and time: no
    label set is kept per series, and equal target label sets are one object (`targets`
    interns them across the queries of one read)."""
    result = _result(body, "vector")
    del body
    by_values: dict[tuple[tuple[str, str], ...], Labels] = {}
    samples = []
    for item in result:
        entry = _object(item, "a result")
        _only(entry, {"metric", "value"})
        timestamp, value = _point(entry.get("value"))
        metric = _check_labels(_object(entry.get("metric"), "a result's metric"))
        rest = dict(metric)
        ip, service = rest.pop("ip", None), rest.pop("cpx_service", None)
        rest.pop("__name__", None)
        key = tuple(rest.items())
        target = by_values.get(key)
        if target is None:
            target = tuple(sorted(key))
            target = by_values[key] = targets.setdefault(target, target)
        samples.append(InstanceSample(ip, service, target, timestamp, value))
    return samples


def parse_matrix(body: bytes) -> list[Range]:
    """The series of a range query answer (or an instant query of a range selector)."""
    result = _result(body, "matrix")
    series = []
    for item in result:
        entry = _object(item, "a result")
        _only(entry, {"metric", "values"})
        values = entry.get("values")
        if not isinstance(values, list):
            raise PayloadError("a result's values are not a list")
        points = [_point(point) for point in values]
        if any(later[0] <= earlier[0] for earlier, later in itertools.pairwise(points)):
            raise PayloadError("a result's values are not in time order")
        labels = _labels(entry.get("metric"))
        if points:  # a series with no samples says nothing: past here every Range has one
            series.append(Range(labels, points))
    return series


def _result(body: bytes, result_type: str) -> list[object]:
    answer = _object(_decode(body), "the answer")
    status = answer.get("status")
    if status == "error":
        kind = answer.get("errorType")
        error = answer.get("error")
        reason = error if isinstance(error, str) else "no reason given"
        prefix = f"{kind}: " if isinstance(kind, str) and kind.isidentifier() else ""
        raise PayloadError(f"Prometheus answered an error: {prefix}{reason[:MAX_ERROR_TEXT]}")
    if status != "success":
        raise PayloadError("the answer's status is not success")
    data = _object(answer.get("data"), "the answer's data")
    if data.get("resultType") != result_type:
        raise PayloadError(f"the answer's resultType is not {result_type}")
    result = data.get("result")
    if not isinstance(result, list):
        raise PayloadError("the answer's result is not a list")
    return result


def _decode(body: bytes) -> object:
    containers = body.count(b"[") + body.count(b"{")
    if containers > 64 + len(body) * CONTAINERS_PER_KIB // 1024:
        raise PayloadError("answer has too many arrays or objects for its size")
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise PayloadError("answer is nested too deeply") from None
    except ValueError:
        raise PayloadError("answer is not valid JSON") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return value


def _only(entry: dict[str, object], keys: set[str]) -> None:
    if not keys <= entry.keys():
        raise PayloadError(f"a result lacks {', '.join(sorted(keys - entry.keys()))}")


def _labels(value: object) -> Labels:
    return tuple(sorted(_check_labels(_object(value, "a result's metric")).items()))


_VALID_NAMES: set[str] = set()


def _check_labels(metric: dict[str, object]) -> dict[str, str]:
    """Every label value a string of bounded length, every name valid (names seen valid once
    are remembered: an answer repeats the same few names in every series)."""
    if len(metric) > MAX_LABELS:
        raise PayloadError(f"a series has more than {MAX_LABELS} labels")
    labels = cast("dict[str, str]", metric)
    if (  # the common case, checked in C loops
        _VALID_NAMES.issuperset(metric)
        and set(map(type, metric.values())) <= {str}
        and max(map(len, labels.values()), default=0) <= MAX_LABEL_VALUE
    ):
        return labels
    for name, text in metric.items():
        if name not in _VALID_NAMES:
            if not _LABEL_NAME.fullmatch(name):
                raise PayloadError("a label name is not valid")
            if len(_VALID_NAMES) < 10_000:
                _VALID_NAMES.add(name)
        if not isinstance(text, str):
            raise PayloadError(f"label {name} is not a string")
        if len(text) > MAX_LABEL_VALUE:
            raise PayloadError(f"label {name} is longer than {MAX_LABEL_VALUE} characters")
    return labels


def _point(value: object) -> tuple[float, float]:
    """`[<unix time as a number>, "<value as a string>"]`."""
    if not isinstance(value, list) or len(value) != 2:
        raise PayloadError("a sample is not a [time, value] pair")
    timestamp, text = value
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise PayloadError("a sample's time is not a number")
    if not -1e11 < timestamp < 1e11:  # compared as given: a 400-digit integer has no float
        raise PayloadError("a sample's time is out of range")
    moment = float(timestamp)
    if not math.isfinite(moment) or not 0 <= moment < 1e11:
        raise PayloadError("a sample's time is out of range")
    return moment, parse_value(text)


def parse_value(text: object) -> float:
    """A sample value in Prometheus's float syntax; NaN and ±Inf are kept (callers decide)."""
    if not isinstance(text, str) or len(text) > MAX_VALUE_TEXT or not _FLOAT.fullmatch(text):
        raise PayloadError("a sample's value is not a number")
    return float(text)  # too large for a float is inf, as in Prometheus
