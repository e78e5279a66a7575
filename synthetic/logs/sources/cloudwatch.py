"""Reading the log metrics with CloudWatch Logs Insights (boto3).

``start_query`` for each query of `synthetic.logs.sources.insights` (started
together), then ``get_query_results`` every ``poll_s`` until each is
``Complete``. ``Failed``, ``Cancelled``, ``Timeout`` (or ``Unknown``) is
UNKNOWN naming the query and its status; a query still ``Scheduled`` or
``Running`` when the reading's deadline comes is stopped (``stop_query``)
and the reading is UNKNOWN. About 10 queries a run, plus one per dependency
with calls, plus the detection sample without a configured preset.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from synthetic.errors import MeasurementError, QueryFailed
from synthetic.extras import require as require_extra
from synthetic.logs import evidence
from synthetic.logs.parse import number
from synthetic.logs.settings import LogsSettings
from synthetic.logs.sources import tallies
from synthetic.logs.sources.client import BackendDown, Deadline, one_line
from synthetic.logs.sources.insights import SAMPLE, TEXT, Insights
from synthetic.logs.sources.settings import CloudWatchSettings
from synthetic.logs.sources.tallies import shape_of

Row = dict[str, str]
FAILED = frozenset({"Failed", "Cancelled", "Timeout", "Unknown"})
MAX_ROWS = 10_000  # Logs Insights' own limit per query


@dataclass(frozen=True)
class Query:
    text: str
    start_s: int
    end_s: int
    limit: int = MAX_ROWS


def logs_client(cloudwatch: CloudWatchSettings, *, timeout_s: float, retries: int) -> Any:
    """A boto3 ``logs`` client with the environment's timeouts and retries."""
    require_extra("aws", 'logs.source = "cloudwatch"')
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": retries + 1, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "logs",
        region_name=cloudwatch.region or None,
        endpoint_url=cloudwatch.endpoint_url or None,
        config=config,
    )


class Runner:
    """Runs Logs Insights queries against one log group, within one deadline."""

    def __init__(self, client: Any, cloudwatch: CloudWatchSettings, deadline: Deadline) -> None:
        self.client = client
        self.cloudwatch = cloudwatch
        self.deadline = deadline
        self.calls = 0

    def _call(self, operation: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        self.calls += 1
        try:
            return getattr(self.client, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise QueryFailed(
                f"CloudWatch Logs {operation} failed: {error.get('Code', '?')}: "
                f"{one_line(str(error.get('Message', '')))}"
            ) from None
        except BotoCoreError as exc:
            raise BackendDown(
                f"CloudWatch Logs did not answer {operation}: {type(exc).__name__}: {exc}"
            ) from None

    def run(self, queries: Mapping[str, Query]) -> dict[str, list[Row]]:
        """Each query's rows; every query started first, then polled together."""
        ids: dict[str, str] = {}
        try:
            for name, query in queries.items():
                started = self._call(
                    "start_query",
                    logGroupName=self.cloudwatch.log_group,
                    startTime=query.start_s,
                    endTime=query.end_s,
                    queryString=query.text,
                    limit=query.limit,
                )
                ids[name] = started["queryId"]
            return self._poll(ids)
        except BaseException:
            self._stop(ids)
            raise

    def _poll(self, ids: dict[str, str]) -> dict[str, list[Row]]:
        found: dict[str, list[Row]] = {}
        pending = dict(ids)
        status: dict[str, str] = {}
        while pending:
            for name, query_id in list(pending.items()):
                answer = self._call("get_query_results", queryId=query_id)
                status[name] = str(answer.get("status"))
                if status[name] == "Complete":
                    found[name] = _rows(answer.get("results"))
                    del pending[name]
                elif status[name] in FAILED:
                    raise QueryFailed(
                        f"the Logs Insights query '{name}' on {self.cloudwatch.log_group} "
                        f"ended {status[name]}"
                    )
            if not pending:
                break
            if self.deadline.left() < self.cloudwatch.poll_s:
                waiting = ", ".join(f"'{n}' {status.get(n, '?')}" for n in pending)
                raise QueryFailed(
                    f"Logs Insights queries still running after {self.deadline.seconds:g}s "
                    f"(the check's budget): {waiting}; stopped"
                )
            time.sleep(self.cloudwatch.poll_s)
        return found

    def _stop(self, ids: dict[str, str]) -> None:
        """Stop what may still run (a query that already ended refuses: fine)."""
        for query_id in ids.values():
            try:
                self._call("stop_query", queryId=query_id)
            except MeasurementError:
                continue


def _rows(results: Any) -> list[Row]:
    if not isinstance(results, list):
        raise QueryFailed("Logs Insights answered results that are not a list")
    rows = []
    for result in results:
        try:
            rows.append({str(cell["field"]): str(cell["value"]) for cell in result})
        except (KeyError, TypeError):
            raise QueryFailed("Logs Insights answered a row it cannot read") from None
    return rows


def _count(rows: list[Row], key: str = "n") -> float:
    try:
        return sum(float(row[key]) for row in rows)
    except (KeyError, ValueError):
        raise QueryFailed(f"Logs Insights answered rows without a number '{key}'") from None


def _n(row: Row) -> float:
    try:
        return float(row["n"])
    except (KeyError, ValueError):
        raise QueryFailed("Logs Insights answered a row without a count 'n'") from None


def _p95(rows: list[Row]) -> float | None:
    values = [number(row.get("p95"), whole=False) for row in rows]
    found = [v for v in values if v is not None]
    return found[0] if found else None


def read(
    settings: LogsSettings, cloudwatch: CloudWatchSettings, runner: Runner, *, at_ms: int
) -> dict[str, Any]:
    """The document of `synthetic.logs.sources.document` from Logs Insights, at ``at_ms``."""
    end_s = at_ms // 1000

    def window(minutes: int) -> int:
        return (at_ms // 60_000 - minutes + 1) * 60

    rate, recent = window(settings.rate_window_minutes), window(settings.recent_window_minutes)

    def sample() -> list[dict[str, Any]]:
        rows = runner.run({"sample": Query(SAMPLE, window(settings.longest_window), end_s, 200)})
        return [r for row in rows["sample"] if isinstance(r := _json(row.get("@message")), dict)]

    shape = shape_of(settings, sample)
    q = Insights(shape, settings)
    with_error: list[bool | None] = [True, False] if shape.call_error else [None]
    first = runner.run(
        {
            "requests": Query(q.requests_by_status(), rate, end_s),
            "lines": Query(q.lines_by_level(), recent, end_s),
            "timed": Query(q.timed_requests(), recent, end_s),
            "slow": Query(q.slow_requests(), recent, end_s),
            **{f"calls{e}": Query(q.calls(with_error=e), rate, end_s) for e in with_error},
            "errors": Query(q.error_lines(), recent, end_s),
            "slowest": Query(q.slow_lines(), recent, end_s),
        }
    )
    error_level = settings.error_level_number
    calls = tallies.calls(
        shape,
        (
            (
                (row.get(TEXT),),
                row.get(q.level or ""),
                row.get(q.call_status or ""),
                e is True,
                _n(row),
            )
            for e in with_error
            for row in first[f"calls{e}"]
        ),
        error_level,
    )
    dependency_queries = {
        name: Query(q.dependency_p95(entry.texts), recent, end_s) for name, entry in calls.items()
    }
    per_dependency = runner.run(dependency_queries) if dependency_queries else {}
    timed = first["timed"]
    return {
        "about": {
            "backend": "cloudwatch",
            "described": f"CloudWatch Logs Insights {cloudwatch.log_group}",
            "log_group": cloudwatch.log_group,
            "region": cloudwatch.region,
            "at_ms": at_ms,
            "shape": shape.describe(),
            "queries": len(first) + len(per_dependency) + (settings.preset is None),
            "api_calls": runner.calls,
            "p95_method": "Logs Insights pct(duration, 95)",
        },
        "requests": {
            **tallies.requests((r.get(q.status or ""), _n(r)) for r in first["requests"]).to_json(),
            "query": q.requests_by_status(),
        },
        "lines": {
            **tallies.lines(
                ((r.get(q.level or ""), _n(r)) for r in first["lines"]), error_level
            ).to_json(),
            "query": q.lines_by_level(),
        },
        "recent": {
            "count": round(_count(timed)),
            "p95": _p95(timed),
            "p95_query": q.timed_requests(),
            "slow": round(_count(first["slow"])),
            "slow_query": q.slow_requests(),
        },
        "dependencies": {
            name: {
                "calls": tallies.whole(entry.calls),
                "failed": tallies.whole(entry.failed),
                "recent": round(_count(per_dependency[name])),
                "p95": _p95(per_dependency[name]),
                "p95_query": dependency_queries[name].text,
            }
            for name, entry in calls.items()
        },
        "calls_query": q.calls(with_error=with_error[0]),
        "evidence": {
            "latest_errors": _lines(first["errors"], settings, None),
            "slowest": _lines(first["slowest"], settings, q.duration),
        },
    }


def _json(text: str | None) -> Any:
    try:
        return orjson.loads(text or "")
    except orjson.JSONDecodeError:
        return None


def _lines(rows: list[Row], settings: LogsSettings, duration: str | None) -> list[dict[str, Any]]:
    personal = frozenset(name.lower() for name in settings.redact_fields)
    found = []
    for row in rows[: evidence.KEEP]:
        entry: dict[str, Any] = {"at": row.get("@timestamp")}
        if duration:
            entry["duration"] = number(row.get(duration), whole=False)
        entry["line"] = evidence.line_evidence((row.get("@message") or "").encode(), personal)
        found.append(entry)
    return found
