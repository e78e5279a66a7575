"""The answer format Loki and Prometheus share for queries.

``{"status": "success", "data": {"resultType": "vector" | "matrix" | ..., "result":
[...]}, "warnings": [...]}``: a vector entry is ``{"metric": {...}, "value": [t, "v"]}``,
a matrix entry ``{"metric": {...}, "values": [[t, "v"], ...]}`` (its last value is
read). Warnings mean a partial answer: refused, since a partial count could
hide the errors it is meant to show.
"""

from __future__ import annotations

import math
from typing import Any

from synthetic.errors import QueryFailed
from synthetic.logs.sources.client import one_line

Series = tuple[dict[str, str], float]


def data_of(answer: Any, backend: str) -> dict[str, Any]:
    """The ``data`` of a successful, complete answer; `QueryFailed` otherwise."""
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), dict):
        raise QueryFailed(f"{backend} answered something that is not its query format (no data)")
    if answer.get("status") != "success":
        message = answer.get("error") or answer.get("status")
        raise QueryFailed(f"{backend} answered status {one_line(str(message))}")
    warnings = answer.get("warnings") or answer["data"].get("warnings")
    if warnings:
        shown = "; ".join(str(w) for w in warnings) if isinstance(warnings, list) else warnings
        raise QueryFailed(f"{backend} answered a partial result ({one_line(str(shown))})")
    data: dict[str, Any] = answer["data"]
    return data


def series_of(data: dict[str, Any], backend: str) -> list[Series]:
    """Each series' labels and value: a vector's, or a matrix's last. NaN stays NaN
    (Prometheus's histogram_quantile of no observations)."""
    kind, result = data.get("resultType"), data.get("result")
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise QueryFailed(f"{backend} answered a {kind} to a metric query")
    found: list[Series] = []
    for entry in result:
        try:
            labels = entry["metric"]
            value = entry["value"][1] if kind == "vector" else entry["values"][-1][1]
            found.append(({str(k): str(v) for k, v in labels.items()}, float(value)))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise QueryFailed(f"{backend} answered a {kind} entry it cannot read") from None
    return found


def total(series: list[Series]) -> float:
    return sum(value for _, value in series if not math.isnan(value))
