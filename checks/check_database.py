"""The portal's PostgreSQL: connections, running and recent query times, size, dead tuples.

Every check reads through the ``postgres`` fixture: one read-only session
with a statement timeout, as the ``monitor`` role (``pg_monitor``, never a
superuser). A database that does not answer makes every check CRITICAL
``unreachable``; ``db.connection_pool_usage`` carries P1 for it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from checks.settings import PortalSettings
from synthetic import Environment, Measurement, MeasurementError, NotConfigured, Samples

pytestmark = pytest.mark.metric(component="database", runbook="database-operations", priority="P2")

# Client backends against the connections a non-superuser can get: PostgreSQL
# keeps superuser_reserved_connections (and, from 16, reserved_connections)
# back, so the portal is refused at 100%, not at max_connections.
POOL_SQL = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0)
         AS reserved,
       coalesce((SELECT json_object_agg(state, n) FROM (
                   SELECT coalesce(state, 'unknown') AS state, count(*) AS n
                   FROM pg_stat_activity WHERE backend_type = 'client backend'
                   GROUP BY 1) AS by_state), '{}') AS by_state
"""

LONGEST_QUERY_SQL = """
SELECT pid, usename, datname, state, wait_event_type, wait_event,
       (extract(epoch FROM clock_timestamp() - query_start) * 1000)::float8 AS duration_ms,
       query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND state <> 'idle'
  AND pid <> pg_backend_pid() AND query_start IS NOT NULL
ORDER BY query_start
LIMIT 1
"""

# A running query's text has its literals (customer data, passwords); statements
# from pg_stat_statements come normalised ($1). Quoted literals are masked.
STRING_LITERAL = re.compile(r"'(?:[^']|'')*(?:'|$)")
QUERY_TEXT_CHARS = 200

STATEMENTS_RESET_SQL = (
    "SELECT coalesce(extract(epoch FROM stats_reset), 0)::float8 FROM pg_stat_statements_info"
)

# Counters per statement of this database, summed over users. Only a bounded set
# is compared and kept between runs: the statements with the most total time (the
# portal's hot paths) and those with the highest mean (where a new slow statement
# shows up); a statement outside it counts as new when it enters.
STATEMENTS_SQL = """
WITH statements AS (
    SELECT queryid, sum(calls)::float8 AS calls, sum(total_exec_time) AS total_ms,
           min(query) AS query
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND queryid IS NOT NULL
    GROUP BY queryid
), ranked AS (
    SELECT *, row_number() OVER (ORDER BY total_ms DESC) AS by_total,
           row_number() OVER (ORDER BY total_ms / nullif(calls, 0) DESC NULLS LAST) AS by_mean
    FROM statements
)
SELECT queryid::text, calls, total_ms, left(query, %(chars)s) AS query
FROM ranked
WHERE by_total <= %(keep)s OR by_mean <= %(keep)s
"""
STATEMENTS_KEPT_PER_RANKING = 250

SIZE_SQL = "SELECT current_database(), pg_database_size(current_database())"

DEAD_TUPLES_SQL = """
SELECT schemaname, relname, n_live_tup, n_dead_tup,
       (100.0 * n_dead_tup / (n_live_tup + n_dead_tup))::float8 AS dead_pct,
       last_vacuum::text, last_autovacuum::text
FROM pg_stat_user_tables
WHERE n_live_tup + n_dead_tup >= greatest(%(min_rows)s, 1)
ORDER BY dead_pct DESC, n_dead_tup DESC
LIMIT 5
"""


def fetch(postgres: Any, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of ``sql`` as dicts."""
    from psycopg.rows import dict_row

    with postgres.cursor(row_factory=dict_row) as cursor:
        rows: list[dict[str, Any]] = cursor.execute(sql, params).fetchall()
        return rows


@pytest.fixture(scope="session")
def disk_capacity(synthetic_env: Environment, portal: PortalSettings) -> int:
    """``params.database_disk_bytes``; the check skips (before connecting) when it is unset."""
    if portal.database_disk_bytes is None:
        pytest.skip(str(NotConfigured("params.database_disk_bytes", synthetic_env.name)))
    return portal.database_disk_bytes


@pytest.mark.metric("db.connection_pool_usage", unit="%", priority="P1")
@pytest.mark.warning("> 80%")
@pytest.mark.critical("> 95%")
def check_connection_pool_usage(postgres: Any) -> Measurement:
    """Client connections as a share of those a non-superuser can open."""
    [row] = fetch(postgres, POOL_SQL)
    available = row["max_connections"] - row["reserved"]
    if available <= 0:
        raise MeasurementError(f"no connection slots for non-superusers: {row}")
    used = sum(row["by_state"].values())
    evidence = {"client_backends": used, "available": available, **row}
    return Measurement(used * 100 / available, evidence=evidence)


@pytest.mark.metric("db.query_duration", unit="ms", priority="P3")
@pytest.mark.warning("> 500ms")
@pytest.mark.critical("> 2s")
def check_query_duration(postgres: Any) -> Measurement:
    """The longest-running non-idle query right now (0 when there is none)."""
    rows = fetch(postgres, LONGEST_QUERY_SQL)
    if not rows:
        return Measurement(0.0, evidence={"longest": None})
    longest = rows[0]
    longest["query"] = STRING_LITERAL.sub("'…'", longest["query"] or "")[:QUERY_TEXT_CHARS]
    return Measurement(float(longest["duration_ms"]), evidence={"longest": longest})


def statement_deltas(postgres: Any, samples: Samples) -> list[dict[str, Any]]:
    """Calls and mean time per statement since the previous run.

    The first run records a baseline and skips. A statement new to the kept set,
    counters that went down, or a ``pg_stat_statements_reset()`` since the
    previous run: the current counters are the delta.
    """
    import psycopg

    try:
        [(reset_at,)] = postgres.execute(STATEMENTS_RESET_SQL).fetchall()
        rows = fetch(
            postgres,
            STATEMENTS_SQL,
            {"keep": STATEMENTS_KEPT_PER_RANKING, "chars": QUERY_TEXT_CHARS},
        )
    except (psycopg.errors.UndefinedTable, psycopg.errors.ObjectNotInPrerequisiteState) as exc:
        raise MeasurementError(
            "pg_stat_statements is not available in this database (CREATE EXTENSION "
            f"pg_stat_statements, with it in shared_preload_libraries): {str(exc).splitlines()[0]}"
        ) from None
    baseline = samples.previous("stats_reset")
    samples.record("stats_reset", reset_at)
    was_reset = baseline is not None and baseline.value != reset_at
    deltas = []
    for row in rows:
        calls, total = row["calls"], row["total_ms"]
        before_calls = samples.previous(f"calls:{row['queryid']}")
        before_total = samples.previous(f"total:{row['queryid']}")
        samples.record(f"calls:{row['queryid']}", calls)
        samples.record(f"total:{row['queryid']}", total)
        if (
            not was_reset
            and before_calls is not None
            and before_total is not None
            and before_calls.value <= calls
            and before_total.value <= total
        ):
            calls, total = calls - before_calls.value, total - before_total.value
        if calls > 0:
            deltas.append({**row, "calls": round(calls), "mean_ms": total / calls})
    if baseline is None:
        pytest.skip(
            f"first run: baseline of {len(rows)} statements recorded; measured from the next run"
        )
    return deltas


@pytest.mark.metric("db.statement_mean_time", unit="ms", priority="P3")
@pytest.mark.warning("> 500ms")
@pytest.mark.critical("> 2s")
def check_statement_mean_time(postgres: Any, samples: Samples) -> Measurement:
    """The slowest statement's mean time over its calls since the previous run."""
    deltas = statement_deltas(postgres, samples)
    slowest = sorted(deltas, key=lambda d: d["mean_ms"], reverse=True)[:5]
    top = [{k: d[k] for k in ("queryid", "calls", "mean_ms", "query")} for d in slowest]
    value = slowest[0]["mean_ms"] if slowest else 0.0
    return Measurement(value, evidence={"statements_run": len(deltas), "slowest": top})


@pytest.mark.metric("db.size", unit="%")
@pytest.mark.warning("> 80%")
@pytest.mark.critical("> 90%")
def check_size(disk_capacity: int, postgres: Any) -> Measurement:
    """The database's size as a share of the configured disk capacity."""
    database, size = postgres.execute(SIZE_SQL).fetchone()
    evidence = {"database": database, "bytes": size, "capacity_bytes": disk_capacity}
    return Measurement(size * 100 / disk_capacity, evidence=evidence)


@pytest.mark.metric("db.dead_tuples", unit="%", priority="P3")
@pytest.mark.warning("> 10%")
@pytest.mark.critical("> 25%")
def check_dead_tuples(postgres: Any, portal: PortalSettings) -> Measurement:
    """The worst table's dead tuples, among tables of at least ``dead_tuples_min_rows``."""
    min_rows = portal.dead_tuples_min_rows
    tables = fetch(postgres, DEAD_TUPLES_SQL, {"min_rows": min_rows})
    value = float(tables[0]["dead_pct"]) if tables else 0.0
    return Measurement(value, evidence={"min_rows": min_rows, "worst_tables": tables})
