"""Reading the log metrics from what the BFF exports to Prometheus (``/api/v1/query``).

Not log lines but their equivalents as prom-client apps export them:

- ``app.error_rate``: ``sum by (status) (increase(http_requests_total[60m]))``,
  the share whose status starts with 5 ("500", or a class "5xx");
- ``logs.response_time_p95``: ``histogram_quantile(0.95, sum by (le)
  (rate(http_request_duration_seconds_bucket[5m])))``: an interpolation
  inside the bucket holding the 95th percentile, so as exact as the buckets;
- ``logs.slow_requests``: the observations above the bucket boundary at
  ``slow_ms`` (UNKNOWN when the histogram has no such boundary);
- ``external.*{dependency}``: the same from a histogram labelled by dependency,
  its failed calls chosen by ``dependency_failed`` (``outcome="error"``);
- ``logs.error_count``: ``errors_metric`` if the app counts its error lines;
  skipped otherwise.

Windows slide (``[60m]``, ``[5m]``) instead of the files' whole minutes, and
``increase`` extrapolates to the window's edges: counts are close, not exact.
The monitor's own requests count unless the app labels them and the
selectors leave them out. Six or seven queries a run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from synthetic.logs.settings import LogsSettings
from synthetic.logs.shapes import LogShape, resolve
from synthetic.logs.sources.answers import Series, data_of, series_of, total
from synthetic.logs.sources.client import JsonClient
from synthetic.logs.sources.document import missing
from synthetic.logs.sources.settings import (
    PrometheusSettings,
    label_matchers,
    metric_selector,
)
from synthetic.measure.selector import Matcher, SeriesSelector

PARALLEL = 4
QUANTILE = 0.95


def _vector(selector: SeriesSelector, suffix: str = "", extra: Iterable[Matcher] = ()) -> str:
    matchers = [*selector.matchers, *extra]
    name = selector.name + suffix
    return f"{name}{{{','.join(str(m) for m in matchers)}}}" if matchers else name


class PromQL:
    """The queries, from the ``[logs.prometheus]`` table and the windows."""

    def __init__(self, settings: LogsSettings, prom: PrometheusSettings) -> None:
        self.settings = settings
        self.prom = prom
        self.requests = metric_selector(prom.requests_metric)
        self.durations = metric_selector(prom.duration_histogram)
        self.dependencies = metric_selector(prom.dependency_histogram)
        self.failed = label_matchers(prom.dependency_failed).matchers
        self.errors = metric_selector(prom.errors_metric) if prom.errors_metric else None
        self.rate = f"[{settings.rate_window_minutes}m]"
        self.recent = f"[{settings.recent_window_minutes}m]"

    def requests_by_status(self) -> str:
        status = self.prom.status_label
        return f"sum by ({status}) (increase({_vector(self.requests)}{self.rate}))"

    def request_p95(self) -> str:
        buckets = _vector(self.durations, "_bucket")
        return f"histogram_quantile({QUANTILE}, sum by (le) (rate({buckets}{self.recent})))"

    def request_buckets(self) -> str:
        return f"sum by (le) (increase({_vector(self.durations, '_bucket')}{self.recent}))"

    def calls(self, *, failed: bool = False) -> str:
        count = _vector(self.dependencies, "_count", self.failed if failed else ())
        return f"sum by ({self.prom.dependency_label}) (increase({count}{self.rate}))"

    def timed_calls(self) -> str:
        count = _vector(self.dependencies, "_count")
        return f"sum by ({self.prom.dependency_label}) (increase({count}{self.recent}))"

    def dependency_p95(self) -> str:
        buckets = _vector(self.dependencies, "_bucket")
        by = f"le, {self.prom.dependency_label}"
        return f"histogram_quantile({QUANTILE}, sum by ({by}) (rate({buckets}{self.recent})))"

    def error_lines(self) -> str | None:
        if self.errors is None:
            return None
        return f"sum(increase({_vector(self.errors)}{self.recent}))"

    def all(self) -> list[str]:
        """Every query a reading sends (the tests parse each with promtool's engine)."""
        found = [
            self.requests_by_status(),
            self.request_p95(),
            self.request_buckets(),
            self.calls(),
            self.calls(failed=True),
            self.timed_calls(),
            self.dependency_p95(),
        ]
        return [*found, *([q] if (q := self.error_lines()) else [])]


def _ms(seconds_or_ms: float, unit: str) -> float:
    return seconds_or_ms * 1000 if unit == "s" else seconds_or_ms


def _slow(buckets: list[Series], slow_ms: float, unit: str, histogram: str) -> dict[str, Any]:
    """Observations above the boundary at slow_ms, and all: from cumulative buckets."""
    by_bound: dict[float, float] = {}
    for labels, value in buckets:
        try:
            by_bound[float(labels.get("le", "nan"))] = value
        except ValueError:
            continue
    count = by_bound.get(math.inf, 0.0)
    threshold = slow_ms / 1000 if unit == "s" else slow_ms
    at = next((b for b in by_bound if math.isclose(b, threshold, rel_tol=1e-9)), None)
    if at is None:
        bounds = ", ".join(f"{_ms(b, unit):g}" for b in sorted(by_bound) if math.isfinite(b))
        why = (
            f"logs.slow_requests needs a bucket boundary at slow_ms ({slow_ms:g} ms) in "
            f"{histogram}; its boundaries (ms): {bounds or 'none'}"
        )
        return {"count": round(count), "slow": None, "slow_missing": why}
    return {"count": round(count), "slow": round(count - by_bound[at])}


def read(
    settings: LogsSettings, prom: PrometheusSettings, client: JsonClient, *, at_ms: int
) -> dict[str, Any]:
    """The document of `synthetic.logs.sources.document` from Prometheus, at ``at_ms``."""
    q = PromQL(settings, prom)
    at = f"{at_ms / 1000:.3f}"

    def vector(query: str) -> list[Series]:
        answer = client.get("/api/v1/query", {"query": query, "time": at})
        return series_of(data_of(answer, "Prometheus"), "Prometheus")

    jobs = {
        "requests": q.requests_by_status(),
        "p95": q.request_p95(),
        "buckets": q.request_buckets(),
        "calls": q.calls(),
        "failed": q.calls(failed=True),
        "timed_calls": q.timed_calls(),
        "dependency_p95": q.dependency_p95(),
    }
    if (errors := q.error_lines()) is not None:
        jobs["errors"] = errors
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="prometheus") as pool:
        futures = {name: pool.submit(partial(vector, query)) for name, query in jobs.items()}
        found = {name: future.result() for name, future in futures.items()}

    shape = resolve(settings, settings.preset or "guide", detected=None)
    return {
        "about": {
            "backend": "prometheus",
            "described": f"Prometheus {prom.requests_metric}",
            "url": prom.url,
            "at_ms": at_ms,
            "queries": client.requests,
            "p95_method": "histogram_quantile: interpolated inside the bucket holding the p95",
        },
        "requests": _requests(found["requests"], prom, jobs["requests"]),
        "lines": _errors(found.get("errors"), q),
        "recent": {
            **_recent(found["buckets"], found["p95"], settings, prom),
            "query": jobs["p95"],
            "slow_query": jobs["buckets"],
        },
        "dependencies": _dependencies(found, shape, prom, jobs),
        "calls_query": jobs["calls"],
        "evidence": {},
    }


def _requests(series: list[Series], prom: PrometheusSettings, query: str) -> dict[str, Any]:
    if not series:
        return {"error": f"Prometheus has no series {prom.requests_metric}", "query": query}
    count = total(series)
    errors = sum(v for labels, v in series if labels.get(prom.status_label, "").startswith("5"))
    return {"count": count, "errors": errors, "query": query}


def _errors(series: list[Series] | None, q: PromQL) -> dict[str, Any]:
    if series is None:
        return missing(
            "no log lines in Prometheus; errors_metric (a counter of error lines) is not set"
        )
    if not series:
        return {"error": f"Prometheus has no series {q.prom.errors_metric}"}
    return {"count": None, "errors": round(total(series)), "query": q.error_lines()}


def _recent(
    buckets: list[Series], p95: list[Series], settings: LogsSettings, prom: PrometheusSettings
) -> dict[str, Any]:
    if not buckets:
        return {"error": f"Prometheus has no series {prom.duration_histogram}_bucket"}
    unit = prom.duration_unit
    slow = _slow(buckets, settings.slow_ms, unit, prom.duration_histogram)
    value = p95[0][1] if p95 else math.nan
    return {**slow, "p95": None if math.isnan(value) else _ms(value, unit)}


def _dependencies(
    found: dict[str, list[Series]], shape: LogShape, prom: PrometheusSettings, jobs: dict[str, str]
) -> dict[str, Any]:
    label = prom.dependency_label

    def by_dependency(series: list[Series]) -> dict[str, float]:
        values: dict[str, float] = {}
        for labels, value in series:
            name = shape.dependency_named(labels.get(label, ""))
            if name is not None and not math.isnan(value):
                values[name] = values.get(name, 0.0) + value
        return values

    calls, failed = by_dependency(found["calls"]), by_dependency(found["failed"])
    recent = by_dependency(found["timed_calls"])
    p95: dict[str, float] = {}
    for labels, value in found["dependency_p95"]:
        name = shape.dependency_named(labels.get(label, ""))
        if name is not None and not math.isnan(value):
            p95[name] = _ms(value, prom.duration_unit)
    return {
        name: {
            "calls": calls.get(name, 0.0),
            "failed": failed.get(name, 0.0),
            "recent": round(recent.get(name, 0.0)),
            "p95": p95.get(name),
            "p95_query": jobs["dependency_p95"],
        }
        for name in sorted(set(calls) | set(p95))
    }
