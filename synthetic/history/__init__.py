"""The history: an append-only store of results, behind one small interface.

`open_history` gives a `HistoryStore`: an embedded SQLite database (a file:
WAL mode, one writing connection) by default, or PostgreSQL when the config's
``history`` is a ``postgresql://`` URL (a history shared by several
runners). Both hold the same tables (`synthetic.history.schema`), migrated on
first use. Reads select by check, environment, location and period, so the
status page, reports and quorum read the same rows; incidents and silences
are the alert store's, not the history's.

Every failure is a `HistoryError` with one masked line: callers report it
and go on (a history that is away never fails a run).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from synthetic.errors import SyntheticError
from synthetic.history.model import Row, RunRow, rows_of

__all__ = ["HistoryError", "HistoryStore", "Row", "RunRow", "open_history", "rows_of"]

DEFAULT_FILE = "history.db"


class HistoryError(SyntheticError):
    """The history store could not be read or written (one line, masked)."""


class HistoryStore(Protocol):
    """Where results are kept across runs."""

    describe: str  # the store, for messages (masked)

    def append(self, run: RunRow, rows: Sequence[Row]) -> None:
        """Add one run and its checks' rows (again for the same run: no change)."""
        ...

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
        """Rows from ``since`` (inclusive) to ``until`` (exclusive), oldest first."""
        ...

    def runs(
        self,
        *,
        since: float,
        until: float | None = None,
        environment: str | None = None,
        location: str | None = None,
    ) -> list[RunRow]:
        """Runs that finished in the period, oldest first."""
        ...

    def streak_start(
        self, *, check: str, environment: str, location: str, severity: str, at: float
    ) -> float | None:
        """When the check's unbroken run of ``severity`` that includes ``at`` began
        (its first row of that severity after one of another); None without such rows."""
        ...

    def prune(self, *, before: float) -> int:
        """Drop rows and runs older than ``before``; how many rows went."""
        ...

    def version(self) -> int:
        """The schema version of the store (migrating it first)."""
        ...

    def close(self) -> None: ...


def history_location(spec: str | None, results_dir: Path) -> str:
    """Where the history is: the configured spec, else a file under the results dir."""
    return spec or str(results_dir / DEFAULT_FILE)


def open_history(spec: str | None, *, results_dir: Path, describe: str = "") -> HistoryStore:
    """The store named by ``spec`` (a path or ``postgresql://`` URL; None: the default
    file under ``results_dir``). Nothing is opened yet: the first call connects."""
    where = history_location(spec, results_dir)
    if where.startswith(("postgresql://", "postgres://")):
        from synthetic.extras import require
        from synthetic.history.postgres import PostgresHistory

        require("postgres", 'history = "postgresql://..."')

        return PostgresHistory(where, describe=describe or "postgresql history")
    from synthetic.history.sqlite import SqliteHistory

    return SqliteHistory(Path(where), describe=describe or where)
