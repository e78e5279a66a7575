"""The runner's state as the web edge reads it: one immutable `Snapshot` at a time.

The round loop records each round (`Board.record`); the history writer seeds
when a check's current state began, for states older than the runner; the
routes take a `Snapshot` and render it. Nothing here does I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from synthetic.history.model import epoch
from synthetic.results import RunResult, Severity
from synthetic.serve.runner import Round


@dataclass(frozen=True)
class Incident:
    key: str
    severity: str
    summary: str
    check_id: str | None
    runbook: str | None
    opened_at: float | None
    flapping: bool = False


@dataclass(frozen=True)
class SilenceView:
    id: str
    until: float
    reason: str
    matchers: Mapping[str, tuple[str, ...]]
    source: str  # "config" or "store"


@dataclass(frozen=True)
class Snapshot:
    environment: str
    every_s: float
    started: float  # epoch: when the runner started
    run: RunResult | None = None  # the last round's
    round_number: int = 0
    round_duration_s: float | None = None
    round_finished: float | None = None  # epoch
    round_overran: bool = False  # the last round took longer than every_s
    rounds: int = 0
    overruns: int = 0
    killed: int = 0  # rounds whose process had to be stopped
    lost: int = 0  # rounds that gave no result
    since: Mapping[str, float] = field(default_factory=dict)  # check id -> epoch
    incidents: tuple[Incident, ...] = ()
    silences: tuple[SilenceView, ...] = ()
    # Runners of several locations: what each saw last (`synthetic.alerts.quorum.matrix`).
    locations: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # the last round's
    history_warning: str | None = None
    alerts_warning: str | None = None

    def age_s(self, now: float) -> float | None:
        """Seconds since the last round finished (None before the first)."""
        return None if self.round_finished is None else max(0.0, now - self.round_finished)

    def healthy(self, now: float) -> bool:
        """The runner is keeping up: a round finished within three periods (or it just began)."""
        limit = 3 * self.every_s + 60.0
        age = self.age_s(now)
        return (now - self.started < limit) if age is None else age < limit


class Board:
    """The latest `Snapshot`, replaced whole under a lock."""

    def __init__(self, environment: str, every_s: float) -> None:
        self._lock = threading.Lock()
        self._snapshot = Snapshot(environment=environment, every_s=every_s, started=time.time())

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def record(self, done: Round, *, every_s: float) -> Snapshot:
        with self._lock:
            before = self._snapshot
            run = done.run
            finished = epoch(run.finished_at)
            previous = {c.id: c.severity for c in before.run.checks} if before.run else {}
            since: dict[str, float] = {}
            for check in run.checks:
                if before.run is None:
                    continue  # the first round: the history says when, once it can
                if previous.get(check.id) is not check.severity:
                    since[check.id] = finished  # it changed with this round
                elif check.id in before.since:
                    since[check.id] = before.since[check.id]
            overran = done.duration_s > every_s
            self._snapshot = replace(
                before,
                run=run,
                round_number=done.number,
                round_duration_s=done.duration_s,
                round_finished=finished,
                round_overran=overran,
                rounds=before.rounds + 1,
                overruns=before.overruns + int(overran),
                killed=before.killed + int(done.killed is not None),
                lost=before.lost + int(not run.checks and not run.complete),
                since=since,
                notes=done.notes,
            )
            return self._snapshot

    def seed_since(self, found: Mapping[str, float]) -> None:
        """When states began, as the history says, for checks the runner has not seen change."""
        with self._lock:
            since = dict(self._snapshot.since)
            for check, at in found.items():
                since.setdefault(check, at)
            self._snapshot = replace(self._snapshot, since=since)

    def update(self, **changes: Any) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)


def worst_of(snapshot: Snapshot) -> Severity | None:
    return snapshot.run.worst if snapshot.run is not None else None
