"""The history's tables, versioned: each migration moves the schema up one version.

The version lives in the store itself (``synthetic_history_version``); a
store opened by this code is migrated to `VERSION` on first use, inside one
transaction (PostgreSQL: under an advisory lock, so runners starting
together migrate once). A store of a newer version than this code knows is
refused rather than written with the wrong shape.

SQL is written once for both dialects; ``{real}`` is the floating-point
type (SQLite ``REAL``, PostgreSQL ``DOUBLE PRECISION``).
"""

from __future__ import annotations

VERSION_TABLE = "synthetic_history_version"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: runs and their checks' results
    (
        """CREATE TABLE synthetic_runs (
            run_id TEXT NOT NULL,
            environment TEXT NOT NULL,
            location TEXT NOT NULL DEFAULT '',
            started_at {real} NOT NULL,
            finished_at {real} NOT NULL,
            worst TEXT NOT NULL,
            complete INTEGER NOT NULL,
            checks INTEGER NOT NULL,
            PRIMARY KEY (run_id, location)
        )""",
        "CREATE INDEX synthetic_runs_by_time ON synthetic_runs (environment, finished_at)",
        """CREATE TABLE synthetic_results (
            at {real} NOT NULL,
            environment TEXT NOT NULL,
            location TEXT NOT NULL DEFAULT '',
            run_id TEXT NOT NULL,
            check_id TEXT NOT NULL,
            metric TEXT NOT NULL,
            series TEXT NOT NULL,
            value {real},
            value_text TEXT,
            unit TEXT,
            severity TEXT NOT NULL,
            duration_ms {real} NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (run_id, location, check_id)
        )""",
        "CREATE INDEX synthetic_results_by_check ON synthetic_results (check_id, at)",
        "CREATE INDEX synthetic_results_by_time ON synthetic_results (at)",
    ),
)
VERSION = len(MIGRATIONS)


def statements(version: int, *, real: str) -> list[str]:
    """The statements that move a store from ``version - 1`` to ``version``."""
    return [sql.format(real=real) for sql in MIGRATIONS[version - 1]]
