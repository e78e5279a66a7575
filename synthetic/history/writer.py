"""The one writer of a long-lived runner's history: a thread that appends and prunes.

A round hands its result over (`HistoryWriter.submit`) and goes on: a slow,
full or unreachable store delays nothing and fails nothing. What went
wrong is kept as one line (`warning`) until a write succeeds again; the
runner shows it in the round's output and on ``/healthz``. Rounds waiting
while the store is away are kept (at most `BACKLOG` of them, the oldest
dropped first) and written when it is back, in order.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from synthetic.history import HistoryError, HistoryStore
from synthetic.history.model import rows_of
from synthetic.results import RunResult
from synthetic.text import printable

BACKLOG = 200  # rounds kept while the store is away (100 minutes at 30 s)
PRUNE_EVERY_S = 3600.0
RETRY_S = 5.0  # after a failure, before the next attempt


class HistoryWriter:
    def __init__(
        self,
        store: HistoryStore,
        *,
        retention_s: float,
        location: str | None = None,
        clock: Callable[[], float] = time.time,
        first: Callable[[], None] | None = None,
        after_write: Callable[[RunResult], None] | None = None,
    ) -> None:
        """``first`` runs on the writer's thread before anything else (a read of the
        history to start from); ``after_write`` after each round it wrote."""
        self.store = store
        self.retention_s = retention_s
        self.location = location
        self.clock = clock
        self.first = first
        self.after_write = after_write
        self.warning: str | None = None
        self.written = 0  # rounds appended
        self.dropped = 0  # rounds lost to a full backlog
        self.pruned = 0  # rows removed by retention
        self._pending: collections.deque[RunResult] = collections.deque()
        self._changed = threading.Condition()
        self._closing = False
        self._next_prune = 0.0
        self._thread = threading.Thread(target=self._work, name="synthetic-history", daemon=True)
        self._thread.start()

    def submit(self, run: RunResult) -> None:
        with self._changed:
            if len(self._pending) >= BACKLOG:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(run)
            self._changed.notify()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every submitted round is written (or ``timeout_s``); whether it was."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._pending and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.1))
            return not self._pending

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is pending (within ``timeout_s``), stop the thread, close the store."""
        self.flush(timeout_s)
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout_s)
        self.store.close()

    def _work(self) -> None:
        if self.first is not None:
            try:
                self.first()
            except HistoryError as exc:
                self.warning = str(exc)
            except Exception as exc:  # a bug here must not end the writer or the runner
                self.warning = printable(f"history: {type(exc).__name__}: {exc}", 500)
        while True:
            with self._changed:
                while not self._pending and not self._closing and not self._prune_due():
                    self._changed.wait(1.0)
                if self._closing:
                    return
                run = self._pending[0] if self._pending else None
            try:
                if run is not None:
                    summary, rows = rows_of(run, location=self.location)
                    self.store.append(summary, rows)
                    with self._changed:
                        self._pending.popleft()
                        self.written += 1
                        self._changed.notify_all()
                    if self.after_write is not None:
                        self.after_write(run)
                if self._prune_due():
                    self.pruned += self.store.prune(before=self.clock() - self.retention_s)
                    self._next_prune = time.monotonic() + PRUNE_EVERY_S
                self.warning = None
            except HistoryError as exc:
                self.warning = str(exc)
                with self._changed:
                    self._changed.wait(RETRY_S)
            except Exception as exc:  # a bug here must not end the writer or the runner
                self.warning = printable(f"history: {type(exc).__name__}: {exc}", 500)
                with self._changed:
                    self._changed.wait(RETRY_S)

    def _prune_due(self) -> bool:
        return time.monotonic() >= self._next_prune
