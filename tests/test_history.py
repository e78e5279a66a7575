"""The history store on SQLite and on a real PostgreSQL: the same tests against both.

What is written is read back as written (numbers, words, masked reasons),
by check, environment, location and period; appending a run twice changes
nothing; a store is migrated once and a newer one is refused; retention
removes exactly the old rows; when a check's state began is computed from
the rows, compared with a walk over the same rows done here.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from synthetic.history import HistoryError, HistoryStore, open_history, rows_of
from synthetic.history.schema import VERSION
from synthetic.history.writer import HistoryWriter
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.sandbox.postgres_server import PostgresServer
from synthetic.text import iso_utc

T0 = 1_790_000_000.0  # 2026-09-21, a fixed clock


def run_at(at: float, severities: dict[str, Severity], *, environment: str = "production",
           value: float = 1.0) -> RunResult:  # fmt: skip
    checks = tuple(
        CheckResult(
            id=f"checks/check_x.py::{name}",
            metric=f"x.{name}",
            severity=severity,
            reason=f"x.{name} = {value}",
            value=value if name != "status" else "degraded",
            unit="requests",
            labels={"queue": "email"} if name == "waiting" else {},
            duration_ms=12.5,
        )
        for name, severity in severities.items()
    )
    return RunResult(
        run_id=f"run-{at:.0f}-{environment}",
        environment=environment,
        target=None,
        started_at=iso_utc(at - 2, timespec="milliseconds"),
        finished_at=iso_utc(at, timespec="milliseconds"),
        checks=checks,
    )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[HistoryStore]:
    store = open_history(None, results_dir=tmp_path / "results")
    yield store
    store.close()


@pytest.fixture
def postgres_store(postgres_server: PostgresServer) -> Iterator[HistoryStore]:
    # A database of its own per test, so tests do not see each other's rows.
    name = f"history_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres_server.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    store = open_history(url, results_dir=Path("unused"))
    yield store
    store.close()
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest) -> HistoryStore:
    found: HistoryStore = request.getfixturevalue(f"{request.param}_store")
    return found


def test_rows_are_read_back_as_written(store: HistoryStore) -> None:
    run = run_at(T0, {"queue": Severity.CRITICAL, "status": Severity.WARNING})
    store.append(*rows_of(run))
    store.append(*rows_of(run))  # again: no duplicate

    rows = store.read(since=T0 - 1)
    assert [(r.check, r.severity, r.value, r.text) for r in rows] == [
        ("checks/check_x.py::queue", "critical", 1.0, None),
        ("checks/check_x.py::status", "warning", None, '"degraded"'),
    ]
    assert rows[0].at == T0
    assert rows[0].unit == "requests"
    assert rows[0].duration_ms == 12.5
    assert rows[1].to_json()["value"] == "degraded"
    [summary] = store.runs(since=T0 - 1)
    assert (summary.worst, summary.complete, summary.checks) == ("critical", True, 2)
    assert summary.started_at == T0 - 2
    assert store.version() == VERSION


def test_reads_select_by_check_environment_location_and_period(store: HistoryStore) -> None:
    for i in range(6):
        store.append(*rows_of(run_at(T0 + 60 * i, {"queue": Severity.OK}, value=i)))
    store.append(*rows_of(run_at(T0 + 30, {"queue": Severity.OK}, environment="staging")))
    store.append(*rows_of(run_at(T0 + 90, {"queue": Severity.OK}), location="eu-west-1"))

    queue = "checks/check_x.py::queue"
    period = store.read(since=T0 + 60, until=T0 + 240, check=queue, environment="production")
    # [T0+60, T0+240): 60, 120, 180 from the default location, 90 from eu-west-1
    assert sorted((r.at - T0, r.location) for r in period) == [
        (60, ""), (90, "eu-west-1"), (120, ""), (180, "")
    ]  # fmt: skip
    located = store.read(since=T0, environment="production", location="eu-west-1")
    assert [r.at - T0 for r in located] == [90]
    assert [r.environment for r in store.read(since=T0, environment="staging")] == ["staging"]
    assert store.read(since=T0, check="checks/check_x.py::nothing") == []
    assert len(store.runs(since=T0, environment="production")) == 7
    assert len(store.read(since=T0, limit=3)) == 3


def test_when_the_current_state_began(store: HistoryStore) -> None:
    timeline = ["ok", "ok", "critical", "critical", "ok", "critical", "critical", "critical"]
    for i, name in enumerate(timeline):
        store.append(*rows_of(run_at(T0 + 60 * i, {"queue": Severity(name)})))

    def walked(i: int) -> float:  # ground truth: walk back from row i while it is the same
        j = i
        while j > 0 and timeline[j - 1] == timeline[i]:
            j -= 1
        return T0 + 60 * j

    for i, name in enumerate(timeline):
        found = store.streak_start(
            check="checks/check_x.py::queue",
            environment="production",
            location="",
            severity=name,
            at=T0 + 60 * i,
        )
        assert found == walked(i), i


def test_retention_prunes_exactly_the_old_rows(store: HistoryStore) -> None:
    for i in range(10):
        store.append(*rows_of(run_at(T0 + 3600 * i, {"queue": Severity.OK, "status": Severity.OK})))
    removed = store.prune(before=T0 + 3600 * 4)
    assert removed == 8  # hours 0..3, two checks each
    assert sorted({r.at for r in store.read(since=0)}) == [T0 + 3600 * i for i in range(4, 10)]
    assert [r.finished_at for r in store.runs(since=0)] == [T0 + 3600 * i for i in range(4, 10)]
    assert store.prune(before=T0 + 3600 * 4) == 0


def test_sqlite_is_in_wal_mode_and_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    first = open_history(str(path), results_dir=tmp_path)
    first.append(*rows_of(run_at(T0, {"queue": Severity.OK})))
    second = open_history(str(path), results_dir=tmp_path)
    assert second.version() == VERSION
    assert len(second.read(since=0)) == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = db.execute("SELECT version FROM synthetic_history_version").fetchall()
    assert versions == [(v,) for v in range(1, VERSION + 1)]
    first.close()
    second.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE synthetic_history_version (version INTEGER NOT NULL)")
        db.execute(f"INSERT INTO synthetic_history_version VALUES ({VERSION + 1})")
    store = open_history(str(path), results_dir=tmp_path)
    with pytest.raises(HistoryError, match=f"schema version {VERSION + 1}, newer than"):
        store.append(*rows_of(run_at(T0, {"queue": Severity.OK})))


def test_an_unwritable_store_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    store = open_history(str(blocker / "history.db"), results_dir=tmp_path)
    with pytest.raises(HistoryError) as caught:
        store.append(*rows_of(run_at(T0, {"queue": Severity.OK})))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("history: cannot append to ")


@pytest.mark.slow
def test_an_unreachable_postgresql_is_one_line_without_the_password(refused_port: int) -> None:
    url = f"postgresql://monitor:s3cret-pass@127.0.0.1:{refused_port}/history"
    store = open_history(url, results_dir=Path("unused"), describe="postgresql://monitor:***@…")
    with pytest.raises(HistoryError) as caught:
        store.read(since=0)
    assert "s3cret-pass" not in str(caught.value)
    assert "\n" not in str(caught.value)


DAY = 86400.0


def test_the_writer_prunes_past_the_retention_on_its_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    seeding = open_history(str(path), results_dir=tmp_path)
    ages_days = [40, 31, 29, 1]
    for age in ages_days:
        seeding.append(
            *rows_of(run_at(T0 - age * DAY, {"queue": Severity.OK, "status": Severity.OK}))
        )
    seeding.close()

    writer = HistoryWriter(
        open_history(str(path), results_dir=tmp_path), retention_s=30 * DAY, clock=lambda: T0
    )
    writer.submit(run_at(T0, {"queue": Severity.CRITICAL, "status": Severity.OK}))
    writer.close()

    assert writer.warning is None
    assert writer.written == 1
    assert writer.pruned == 2 * 2  # the runs 40 and 31 days old, two checks each
    reading = open_history(str(path), results_dir=tmp_path)
    kept = sorted({r.at for r in reading.read(since=0)})
    reading.close()
    assert kept == [T0 - 29 * DAY, T0 - 1 * DAY, T0]


@pytest.mark.slow  # waits out the writer's pause after a failure
def test_a_store_that_cannot_be_written_is_a_warning_and_its_rounds_wait(tmp_path: Path) -> None:
    blocker = tmp_path / "history"
    blocker.write_text("", encoding="utf-8")  # a file where the store's directory should be
    writer = HistoryWriter(
        open_history(str(blocker / "history.db"), results_dir=tmp_path),
        retention_s=30 * DAY,
        clock=lambda: T0,
    )
    rounds = [run_at(T0 + i, {"queue": Severity.OK}) for i in range(3)]
    for run in rounds:
        writer.submit(run)  # never raises, never waits for the store
    assert not writer.flush(timeout_s=2.0)
    warning = writer.warning
    assert warning is not None
    assert warning.startswith("history: cannot ")
    assert "\n" not in warning
    assert writer.written == 0

    blocker.unlink()
    blocker.mkdir()  # the disk is back
    assert writer.flush(timeout_s=30.0)
    writer.close()
    assert writer.warning is None
    reading = open_history(str(blocker / "history.db"), results_dir=tmp_path)
    assert [r.run_id for r in reading.runs(since=0)] == [r.run_id for r in rounds]
    reading.close()
