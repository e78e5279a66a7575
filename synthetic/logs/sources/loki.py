"""Reading the log metrics from Loki's HTTP API.

``GET /loki/api/v1/query`` (instant metric queries, all at one ``time``) and
``/loki/api/v1/query_range`` (log lines: the detection sample and the
evidence). The documented answers: ``{"status": "success", "data":
{"resultType": "vector" | "matrix" | "streams", "result": [...]}}``; a
``warnings`` list means a partial answer, which is refused rather than
counted (a partial count could hide errors); an error answer (plain text or
JSON) becomes a one-line `QueryFailed` with Loki's message.

Ten queries a run, one more per dependency with recent calls and one more
without a configured preset (14 with the guide's three dependencies), at most
`PARALLEL` at a time, all inside one deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import orjson

from synthetic.errors import QueryFailed
from synthetic.logs import evidence
from synthetic.logs.parse import number
from synthetic.logs.settings import LogsSettings, split_path
from synthetic.logs.shapes import LogShape, get_path
from synthetic.logs.sources import tallies
from synthetic.logs.sources.answers import Series, data_of, series_of, total
from synthetic.logs.sources.client import JsonClient
from synthetic.logs.sources.logql import LogQL, rank_quantile
from synthetic.logs.sources.settings import LokiSettings
from synthetic.logs.sources.tallies import shape_of

PARALLEL = 4
SAMPLE_LINES = 200
EVIDENCE_LINES = 100
QUANTILE = 0.95


class LokiApi:
    """The two endpoints, their answers checked against the documented format."""

    def __init__(self, client: JsonClient, *, at_ms: int) -> None:
        self.client = client
        self.at_ns = str(at_ms * 1_000_000)

    def vector(self, query: str) -> list[Series]:
        """An instant metric query: each series' labels and value (a matrix's last)."""
        answer = self.client.get("/loki/api/v1/query", {"query": query, "time": self.at_ns})
        return series_of(data_of(answer, "Loki"), "Loki")

    def lines(self, query: str, *, start_ms: int, limit: int) -> list[tuple[int, str]]:
        """A log query, newest first: (epoch ms, line)."""
        params = {
            "query": query,
            "start": str(start_ms * 1_000_000),
            "end": self.at_ns,
            "limit": str(limit),
            "direction": "backward",
        }
        data = data_of(self.client.get("/loki/api/v1/query_range", params), "Loki")
        if data.get("resultType") != "streams" or not isinstance(data.get("result"), list):
            raise QueryFailed(f"Loki answered a {data.get('resultType')} to a log query")
        found: list[tuple[int, str]] = []
        for stream in data["result"]:
            try:
                found += [(int(ts) // 1_000_000, str(line)) for ts, line in stream["values"]]
            except (KeyError, TypeError, ValueError):
                raise QueryFailed("Loki answered a stream entry it cannot read") from None
        found.sort(key=lambda entry: entry[0], reverse=True)
        return found[:limit]


def _records(lines: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    records = []
    for _, line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _parallel(jobs: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Each job's answer; the first failure (in order) is raised."""
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="loki") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def read(
    settings: LogsSettings, loki: LokiSettings, client: JsonClient, *, at_ms: int
) -> dict[str, Any]:
    """The document of `synthetic.logs.sources.document` from Loki, at ``at_ms``."""
    api = LokiApi(client, at_ms=at_ms)
    since = (at_ms // 60_000 - settings.longest_window + 1) * 60_000
    recent_since = (at_ms // 60_000 - settings.recent_window_minutes + 1) * 60_000

    def sample() -> list[dict[str, Any]]:
        return _records(api.lines(loki.selector, start_ms=since, limit=SAMPLE_LINES))

    shape = shape_of(settings, sample)
    q = LogQL(shape, settings, loki, at_ms=at_ms)
    with_error: list[bool | None] = [True, False] if q.call_error else [None]
    first = _parallel(
        {
            "requests": lambda: api.vector(q.requests_by_status()),
            "lines": lambda: api.vector(q.lines_by_level()),
            "timed": lambda: api.vector(q.timed_requests()),
            "slow": lambda: api.vector(q.slow_requests()),
            "timed_calls": lambda: api.vector(q.timed_calls()),
            **{f"calls{e}": partial(api.vector, q.calls(with_error=e)) for e in with_error},
            "errors": lambda: api.lines(
                q.error_lines(), start_ms=recent_since, limit=evidence.KEEP
            ),
            "slowest": lambda: api.lines(
                q.slow_lines(), start_ms=recent_since, limit=EVIDENCE_LINES
            ),
        }
    )
    error_level = settings.error_level_number
    requests = tallies.requests((s.get(q.status), v) for s, v in first["requests"])
    lines = tallies.lines(((s.get(q.level), v) for s, v in first["lines"]), error_level)
    calls = tallies.calls(
        shape,
        (
            (tuple(s.get(t) for t in q.texts), s.get(q.level), s.get(q.call_status), e is True, v)
            for e in with_error
            for s, v in first[f"calls{e}"]
        ),
        error_level,
    )
    timed_calls = tallies.timed_calls(
        shape, ((tuple(s.get(t) for t in q.texts), v) for s, v in first["timed_calls"])
    )
    n = round(total(first["timed"]))

    p95_queries: dict[str, str] = {}
    if n:
        p95_queries["requests"] = q.request_p95(rank_quantile(QUANTILE, n))
    for name, timed in timed_calls.items():
        if round(timed.calls):
            phi = rank_quantile(QUANTILE, round(timed.calls))
            p95_queries[name] = q.dependency_p95(phi, timed.texts)
    answers = _parallel({name: partial(api.vector, query) for name, query in p95_queries.items()})
    p95s = {name: (total(series) if series else None) for name, series in answers.items()}

    method = "Loki quantile_over_time, asked at the files' rank floor(0.95 (n - 1)): exact"
    return {
        "about": {
            "backend": "loki",
            "described": f"Loki {loki.selector}",
            "url": loki.url,
            "selector": loki.selector,
            "at_ms": at_ms,
            "shape": shape.describe(),
            "queries": client.requests,
            "p95_method": method,
        },
        "requests": {**requests.to_json(), "query": q.requests_by_status()},
        "lines": {**lines.to_json(), "query": q.lines_by_level()},
        "recent": {
            "count": n,
            "slow": round(total(first["slow"])),
            "slow_query": q.slow_requests(),
            "p95": p95s.get("requests"),
            "p95_query": p95_queries.get("requests"),
        },
        "dependencies": {
            name: {
                "calls": tallies.whole(entry.calls),
                "failed": tallies.whole(entry.failed),
                "recent": round(timed_calls[name].calls) if name in timed_calls else 0,
                "p95": p95s.get(name),
                "p95_query": p95_queries.get(name),
            }
            for name, entry in calls.items()
        },
        "calls_query": q.calls(with_error=with_error[0]),
        "evidence": {
            "latest_errors": _evidence_lines(first["errors"], settings),
            "slowest": _slowest(first["slowest"], settings, shape),
        },
    }


def _evidence_lines(lines: list[tuple[int, str]], settings: LogsSettings) -> list[dict[str, Any]]:
    personal = frozenset(name.lower() for name in settings.redact_fields)
    return [
        {"at": at, "line": evidence.line_evidence(line.encode(), personal)}
        for at, line in lines[: evidence.KEEP]
    ]


def _slowest(
    lines: list[tuple[int, str]], settings: LogsSettings, shape: LogShape
) -> list[dict[str, Any]]:
    path = split_path(shape.request_duration)
    timed = []
    for at, line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        duration = number(get_path(record, path), whole=False) if isinstance(record, dict) else None
        timed.append((duration or 0.0, at, line))
    timed.sort(reverse=True)
    personal = frozenset(name.lower() for name in settings.redact_fields)
    return [
        {"at": at, "duration": duration, "line": evidence.line_evidence(line.encode(), personal)}
        for duration, at, line in timed[: evidence.KEEP]
    ]
