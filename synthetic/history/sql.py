"""The history's SQL, shared by SQLite and PostgreSQL: one class, two connectors.

Two connections: one that writes (appends, prunes, migrations: one writer)
and one that reads, so a page being rendered never waits behind a write
transaction (SQLite in WAL mode, or PostgreSQL's MVCC). Each is made on
first use and dropped after a failure, so a store that comes back is used
again; every failure becomes a one-line `HistoryError`.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from synthetic.history import HistoryError
from synthetic.history.model import Row, RunRow
from synthetic.history.schema import VERSION, VERSION_TABLE, statements
from synthetic.outcome import one_line

T = TypeVar("T")

_ROW_COLUMNS = (
    "at, environment, location, run_id, check_id, metric, series, value, value_text, unit, "
    "severity, duration_ms, reason"
)
_RUN_COLUMNS = "run_id, environment, location, started_at, finished_at, worst, complete, checks"
PRUNE_BATCH = 5000  # rows deleted per transaction, so a prune never holds the writer long


class SqlHistory(abc.ABC):
    """A `synthetic.history.HistoryStore` on a DB-API connection."""

    param = "?"  # the driver's placeholder
    real = "REAL"

    def __init__(self, describe: str) -> None:
        self.describe = describe
        self._connections: dict[str, Any] = {}
        self._locks = {"write": threading.Lock(), "read": threading.Lock()}
        self._migrated = False

    # -- what a dialect provides ---------------------------------------------------------------

    @abc.abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection (not in autocommit)."""

    @abc.abstractmethod
    def _lock_for_migration(self, cursor: Any) -> None:
        """Make concurrent migrations wait for each other, inside the transaction."""

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (Exception,)

    # -- the interface -------------------------------------------------------------------------

    def append(self, run: RunRow, rows: Sequence[Row]) -> None:
        p = self.param
        run_sql = (
            f"INSERT INTO synthetic_runs ({_RUN_COLUMNS}) VALUES ({', '.join([p] * 8)}) "
            "ON CONFLICT DO NOTHING"
        )
        row_sql = (
            f"INSERT INTO synthetic_results ({_ROW_COLUMNS}) VALUES ({', '.join([p] * 13)}) "
            "ON CONFLICT DO NOTHING"
        )

        def write(cursor: Any) -> None:
            cursor.execute(
                run_sql,
                (
                    run.run_id,
                    run.environment,
                    run.location,
                    run.started_at,
                    run.finished_at,
                    run.worst,
                    int(run.complete),
                    run.checks,
                ),
            )
            cursor.executemany(
                row_sql,
                [
                    (
                        r.at,
                        r.environment,
                        r.location,
                        r.run_id,
                        r.check,
                        r.metric,
                        r.series,
                        r.value,
                        r.text,
                        r.unit,
                        r.severity,
                        r.duration_ms,
                        r.reason,
                    )
                    for r in rows
                ],
            )

        self._transaction("write", write, doing="append to")

    def read(
        self,
        *,
        since: float,
        until: float | None = None,
        check: str | None = None,
        environment: str | None = None,
        location: str | None = None,
        limit: int = 100_000,
    ) -> list[Row]:
        where, args = self._where(
            "at", since, until, check_id=check, environment=environment, location=location
        )
        sql = (
            f"SELECT {_ROW_COLUMNS} FROM synthetic_results WHERE {where} "
            f"ORDER BY at, check_id LIMIT {int(limit)}"
        )
        found = self._query(sql, args)
        return [
            Row(
                at=float(r[0]),
                environment=r[1],
                location=r[2],
                run_id=r[3],
                check=r[4],
                metric=r[5],
                series=r[6],
                value=None if r[7] is None else float(r[7]),
                text=r[8],
                unit=r[9],
                severity=r[10],
                duration_ms=float(r[11]),
                reason=r[12],
            )
            for r in found
        ]

    def runs(
        self,
        *,
        since: float,
        until: float | None = None,
        environment: str | None = None,
        location: str | None = None,
    ) -> list[RunRow]:
        where, args = self._where(
            "finished_at", since, until, environment=environment, location=location
        )
        sql = f"SELECT {_RUN_COLUMNS} FROM synthetic_runs WHERE {where} ORDER BY finished_at"
        return [
            RunRow(
                run_id=r[0],
                environment=r[1],
                location=r[2],
                started_at=float(r[3]),
                finished_at=float(r[4]),
                worst=r[5],
                complete=bool(r[6]),
                checks=int(r[7]),
            )
            for r in self._query(sql, args)
        ]

    def streak_start(
        self, *, check: str, environment: str, location: str, severity: str, at: float
    ) -> float | None:
        p = self.param
        same = f"check_id = {p} AND environment = {p} AND location = {p}"
        # The last row of another severity before `at`; the streak is what follows it.
        sql = (
            f"SELECT min(at) FROM synthetic_results WHERE {same} AND severity = {p} AND at <= {p} "
            f"AND at > coalesce((SELECT max(at) FROM synthetic_results WHERE {same} "
            f"AND severity <> {p} AND at <= {p}), -1)"
        )
        args = (check, environment, location, severity, at, check, environment, location)
        found = self._query(sql, (*args, severity, at))
        value = found[0][0] if found else None
        return None if value is None else float(value)

    def prune(self, *, before: float) -> int:
        p = self.param
        total = 0
        while True:
            batch = (
                f"DELETE FROM synthetic_results WHERE at < {p} AND run_id IN (SELECT run_id "
                f"FROM synthetic_results WHERE at < {p} LIMIT {PRUNE_BATCH})"
            )

            def delete(cursor: Any, sql: str = batch) -> int:
                cursor.execute(sql, (before, before))
                return int(cursor.rowcount or 0)

            removed = self._transaction("write", delete, doing="prune")
            total += removed
            if removed == 0:
                break
        self._transaction(
            "write",
            lambda c: c.execute(f"DELETE FROM synthetic_runs WHERE finished_at < {p}", (before,)),
            doing="prune",
        )
        return total

    def version(self) -> int:
        found = self._query(f"SELECT max(version) FROM {VERSION_TABLE}", ())
        return int(found[0][0] or 0)

    def close(self) -> None:
        for name in list(self._connections):
            with self._locks[name]:
                self._drop(name)

    # -- plumbing ------------------------------------------------------------------------------

    def _where(
        self, column: str, since: float, until: float | None, **equal: str | None
    ) -> tuple[str, list[Any]]:
        p = self.param
        clauses: list[str] = [f"{column} >= {p}"]
        args: list[Any] = [since]
        if until is not None:
            clauses.append(f"{column} < {p}")
            args.append(until)
        for name, value in equal.items():
            if value is not None:
                clauses.append(f"{name} = {p}")
                args.append(value)
        return " AND ".join(clauses), args

    def _query(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def fetch(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(sql, tuple(args))
            return list(cursor.fetchall())

        return self._transaction("read", fetch, doing="read")

    def _transaction(self, name: str, work: Callable[[Any], T], *, doing: str) -> T:
        with self._locks[name]:
            try:
                connection = self._connection(name)
                cursor = connection.cursor()
                try:
                    result = work(cursor)
                finally:
                    cursor.close()
                connection.commit()
                return result
            except HistoryError:
                self._drop(name)
                raise
            except self._errors() as exc:
                self._drop(name)
                raise HistoryError(
                    f"history: cannot {doing} {self.describe}: {one_line(_message(exc))}"
                ) from None

    def _connection(self, name: str) -> Any:
        connection = self._connections.get(name)
        if connection is None:
            connection = self._connect()
            self._connections[name] = connection
            if not self._migrated:
                self._migrate(connection)
        return connection

    def _migrate(self, connection: Any) -> None:
        cursor = connection.cursor()
        try:
            self._lock_for_migration(cursor)
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
            cursor.execute(f"SELECT max(version) FROM {VERSION_TABLE}")
            current = int(cursor.fetchone()[0] or 0)
            if current > VERSION:
                raise HistoryError(
                    f"history: {self.describe} has schema version {current}, newer than this "
                    f"synthetic knows ({VERSION}); upgrade synthetic"
                )
            for version in range(current + 1, VERSION + 1):
                for sql in statements(version, real=self.real):
                    cursor.execute(sql)
                cursor.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES ({version})")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()
        self._migrated = True

    def _drop(self, name: str) -> None:
        connection = self._connections.pop(name, None)
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken: closing is all that is left
                connection.close()


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
