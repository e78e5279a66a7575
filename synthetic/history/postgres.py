"""A shared history in PostgreSQL (psycopg 3), for several runners of one environment."""

from __future__ import annotations

from typing import Any

from synthetic.history.sql import SqlHistory

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 10_000  # no read or write holds a round's bookkeeping longer
MIGRATION_LOCK = 0x5F5F_4849  # pg_advisory_xact_lock key: runners migrate one at a time


class PostgresHistory(SqlHistory):
    param = "%s"
    real = "DOUBLE PRECISION"

    def __init__(self, url: str, *, describe: str) -> None:
        super().__init__(describe)
        self.url = url

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            self.url,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            application_name="synthetic-history",
        )

    def _lock_for_migration(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    def _errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error, OSError)
