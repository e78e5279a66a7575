"""The default history: an SQLite file (WAL mode; one writing connection)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from synthetic.history.sql import SqlHistory

BUSY_TIMEOUT_S = 5.0  # another process writing (a `run` beside `serve`): wait this long


class SqliteHistory(SqlHistory):
    param = "?"
    real = "REAL"

    def __init__(self, path: Path, *, describe: str) -> None:
        super().__init__(describe)
        self.path = path

    def _connect(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: the connection is used under this store's lock,
        # from whichever thread writes or renders.
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level="DEFERRED"
        )
        try:
            # WAL: readers never block the writer nor wait for it; NORMAL sync is
            # durable across a crash of the process (not of the machine), enough for history.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    def _lock_for_migration(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error, OSError)
