"""checks/check_database.py run as a user runs it: pytest on the real check file, with a
``synthetic.toml`` whose ``postgres_dsn`` is the ``monitor`` role of a real PostgreSQL 15
(``pg_stat_statements`` preloaded). The tests move each value across its thresholds
with real load: held connections, ``pg_sleep``, slow statements, dead tuples.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from checks.check_database import STATEMENTS_KEPT_PER_RANKING, statement_deltas
from synthetic import Samples
from synthetic.sandbox import postgres_server as postgres_server_module
from synthetic.sandbox.postgres_server import PostgresServer, PostgresServerError, find_postgres_bin
from tests.support.catalogue_runs import environment_toml, run_check_file
from tests.support.postgres_fixtures import MAX_CONNECTIONS

REPO = Path(__file__).resolve().parent.parent
CHECKS = REPO / "checks" / "check_database.py"
ALL_CHECKS = (
    "check_connection_pool_usage",
    "check_query_duration",
    "check_statement_mean_time",
    "check_size",
    "check_dead_tuples",
)
# superuser_reserved_connections is 3: the monitor role (and the portal) get 17 of 20.
AVAILABLE = MAX_CONNECTIONS - 3


# -- helpers ----------------------------------------------------------------------------------


def write_config(pytester: pytest.Pytester, **keys: Any) -> Path:
    """``synthetic.toml`` with one environment, ``test``; a key set to None is left out."""
    settings: dict[str, Any] = {"timeout_s": 3, "database_disk_bytes": 10**12}
    settings.update(keys)
    lines = environment_toml("test", settings)
    path = pytester.path / "synthetic.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_checks(pytester: pytest.Pytester, config: Path, *checks: str) -> dict[str, dict[str, Any]]:
    """Run checks of checks/check_database.py; their results.json entries by function name."""
    results, _ = run_check_file(pytester, CHECKS, config, "-k", " or ".join(checks))
    assert set(results) == set(checks)
    return results


def run_check(pytester: pytest.Pytester, config: Path, check: str) -> dict[str, Any]:
    return run_checks(pytester, config, check)[check]


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.02)


def scalar(dsn: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute(query, params).fetchone()
        assert row is not None
        return row[0]


@dataclass(frozen=True)
class Database:
    """A fresh database of the shared server, and DSNs for it."""

    name: str
    admin_dsn: str
    monitor_dsn: str

    def execute(self, *statements: str) -> None:
        """Run statements as the superuser on a new connection, closed after: the
        backend exits and flushes its table statistics at once."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)


@pytest.fixture
def new_database(postgres_server: PostgresServer) -> Iterator[Callable[..., Database]]:
    """Makes databases (with ``pg_stat_statements`` unless told not to); drops them after."""
    made: list[str] = []

    def make(*, extension: bool = True) -> Database:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        database = Database(
            name,
            make_conninfo(postgres_server.admin_dsn, dbname=name),
            make_conninfo(postgres_server.monitor_dsn, dbname=name),
        )
        if extension:
            database.execute("CREATE EXTENSION pg_stat_statements")
        return database

    yield make
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as connection:
        for name in made:
            drop = sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            connection.execute(drop)


def client_backends(admin_dsn: str) -> int:
    count: int = scalar(
        admin_dsn,
        "SELECT count(*) - 1 FROM pg_stat_activity WHERE backend_type = 'client backend'",
    )
    return count  # without the connection that asks


@contextmanager
def running_query(admin_dsn: str, query: str) -> Iterator[int]:
    """Run ``query`` in a thread; yield its backend PID once it is active.
    At the end the query is cancelled and the thread joined."""
    connection = psycopg.connect(admin_dsn, autocommit=True)
    pid = connection.info.backend_pid
    failure: list[BaseException] = []

    def run() -> None:
        try:
            connection.execute(query)
        except psycopg.errors.QueryCanceled:
            pass
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: (
                scalar(admin_dsn, "SELECT state FROM pg_stat_activity WHERE pid = %s", [pid])
                == "active"
            ),
            "the query to start",
        )
        yield pid
    finally:
        scalar(admin_dsn, "SELECT pg_cancel_backend(%s)", [pid])
        thread.join(timeout=10)
        connection.close()
    assert not thread.is_alive()
    assert not failure, failure


def running_for_ms(admin_dsn: str, pid: int) -> float:
    elapsed: float = scalar(
        admin_dsn,
        "SELECT extract(epoch FROM clock_timestamp() - query_start)::float8 * 1000 "
        "FROM pg_stat_activity WHERE pid = %s",
        [pid],
    )
    return elapsed


# -- the session the checks get ------------------------------------------------------------------


@pytest.mark.slow
def test_checks_connect_as_a_read_only_non_superuser(
    pytester: pytest.Pytester, postgres_server: PostgresServer
) -> None:
    assert (
        scalar(
            postgres_server.monitor_dsn,
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
        )
        is False
    )
    assert scalar(postgres_server.monitor_dsn, "SELECT pg_has_role('pg_monitor', 'member')") is True
    config = write_config(pytester, postgres_dsn=postgres_server.monitor_dsn, timeout_s=4)
    pytester.makepyfile(
        test_session="""
        import psycopg
        import pytest

        def test_session(postgres):
            one = lambda q: postgres.execute(q).fetchone()[0]
            assert one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
            assert one("SHOW transaction_read_only") == "on"
            assert one("SHOW statement_timeout") == "4s"
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                postgres.execute("CREATE TABLE written (i int)")
            with pytest.raises(psycopg.errors.QueryCanceled):
                postgres.execute("SET statement_timeout = 50; SELECT pg_sleep(1)")
        """
    )
    result = pytester.runpytest(
        "--env", "test", "--synthetic-config", str(config), "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_without_postgres_dsn_every_check_is_skipped(pytester: pytest.Pytester) -> None:
    config = write_config(pytester)
    results = run_checks(pytester, config, *ALL_CHECKS)
    for name, result in results.items():
        assert result["severity"] == "skipped", name
        assert "postgres_dsn is not configured for environment 'test'" in result["reason"]


@pytest.mark.slow
def test_database_down_is_critical_unreachable_for_every_check(
    pytester: pytest.Pytester,
) -> None:
    with PostgresServer(max_connections=5) as server:
        pid, directory, dsn = server.pid, server.directory, server.monitor_dsn
        assert pid is not None
        assert directory is not None
        assert directory.is_dir()
        assert scalar(dsn, "SELECT current_user") == "monitor"
    server.stop()  # again: nothing to do
    assert not directory.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    password = str(conninfo_to_dict(dsn)["password"])
    config = write_config(pytester, postgres_dsn=dsn, timeout_s=2)
    started = time.monotonic()
    results = run_checks(pytester, config, *ALL_CHECKS)
    assert time.monotonic() - started < 6  # one refused connection, shared by every check
    for name, result in results.items():
        assert result["severity"] == "critical", name
        assert "unreachable" in result["reason"], result["reason"]
        assert result["value"] is None
    assert results["check_connection_pool_usage"]["priority"] == "P1"
    assert password not in json.dumps(results)


def test_missing_binaries_are_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres_server_module, "_VERSIONED_BINS", tmp_path / "none")
    assert find_postgres_bin() is None
    with pytest.raises(PostgresServerError, match=r"initdb, postgres\) not found .* postgresql-15"):
        PostgresServer().start()
    with pytest.raises(PostgresServerError, match="user 'nobody-here' does not exist"):
        PostgresServer(run_as="nobody-here")._user_kwargs()


def test_postgres_binaries_are_found() -> None:
    found = find_postgres_bin()
    assert found is not None, "PostgreSQL is not installed: apt-get install -y postgresql-15"
    assert (found / "initdb").is_file()
    assert (found / "postgres").is_file()


# -- db.connection_pool_usage -------------------------------------------------------------------


@pytest.mark.slow
def test_connection_pool_usage_counts_client_backends_against_non_reserved_slots(
    pytester: pytest.Pytester, postgres_server: PostgresServer
) -> None:
    admin = postgres_server.admin_dsn
    config = write_config(pytester, postgres_dsn=postgres_server.monitor_dsn)
    held: list[psycopg.Connection[Any]] = []
    try:
        # The check's own connection is one of them: hold total - 1.
        for total, severity in [(13, "ok"), (14, "warning"), (16, "warning"), (17, "critical")]:
            while len(held) < total - 1:
                held.append(psycopg.connect(admin, autocommit=True))
            wait_for(lambda: client_backends(admin) == len(held), "closed sessions to exit")
            result = run_check(pytester, config, "check_connection_pool_usage")
            assert result["severity"] == severity, result["reason"]
            assert result["value"] == pytest.approx(total * 100 / AVAILABLE)  # 76.5 .. 100
            evidence = result["evidence"]
            assert evidence["client_backends"] == total
            assert (evidence["max_connections"], evidence["reserved"]) == (MAX_CONNECTIONS, 3)
            assert evidence["available"] == AVAILABLE
            assert evidence["by_state"]["idle"] >= total - 1

        # Beyond: the monitor role, like the portal's, is refused a connection.
        held.append(psycopg.connect(admin, autocommit=True))
        result = run_check(pytester, config, "check_connection_pool_usage")
        assert result["severity"] == "critical"
        assert "unreachable" in result["reason"]
        assert "reserved" in result["reason"]
    finally:
        for connection in held:
            connection.close()


# -- db.query_duration --------------------------------------------------------------------------


@pytest.mark.slow
def test_query_duration_is_the_longest_running_query_now(
    pytester: pytest.Pytester, postgres_server: PostgresServer
) -> None:
    admin = postgres_server.admin_dsn
    config = write_config(pytester, postgres_dsn=postgres_server.monitor_dsn)
    wait_for(lambda: client_backends(admin) == 0, "other sessions to exit")
    result = run_check(pytester, config, "check_query_duration")
    assert (result["severity"], result["value"]) == ("ok", 0)  # its own query is not counted

    query = "SELECT 'jane@example.com' AS email, pg_sleep(30)"
    with running_query(admin, query) as pid:
        wait_for(lambda: running_for_ms(admin, pid) > 600, "the query to run 600 ms")
        result = run_check(pytester, config, "check_query_duration")
        assert result["severity"] == "warning", result["reason"]
        assert 600 < result["value"] < 2000
        longest = result["evidence"]["longest"]
        assert (longest["pid"], longest["state"]) == (pid, "active")
        assert longest["query"] == "SELECT '…' AS email, pg_sleep(30)"  # literals masked

        wait_for(lambda: running_for_ms(admin, pid) > 2100, "the query to run 2.1 s")
        result = run_check(pytester, config, "check_query_duration")
        assert result["severity"] == "critical", result["reason"]
        assert 2100 < result["value"] < 30_000
        assert result["evidence"]["longest"]["pid"] == pid


# -- db.statement_mean_time ---------------------------------------------------------------------


@pytest.mark.slow
def test_statement_mean_time_is_measured_between_runs(
    pytester: pytest.Pytester,
    postgres_server: PostgresServer,
    new_database: Callable[..., Database],
) -> None:
    db = new_database()
    config = write_config(pytester, postgres_dsn=db.monitor_dsn)
    check = "check_statement_mean_time"

    result = run_check(pytester, config, check)
    assert result["severity"] == "skipped"
    assert "first run: baseline of" in result["reason"]
    assert "measured from the next run" in result["reason"]

    db.execute("SELECT pg_sleep(0.6)")
    result = run_check(pytester, config, check)
    assert result["severity"] == "warning", result["reason"]
    assert 600 <= result["value"] < 1000
    slowest = result["evidence"]["slowest"][0]
    assert (slowest["query"], slowest["calls"]) == ("SELECT pg_sleep($1)", 1)

    # Since the previous run only: 2.1 s, although the cumulative mean is 1.35 s.
    db.execute("SELECT pg_sleep(2.1)")
    result = run_check(pytester, config, check)
    assert result["severity"] == "critical", result["reason"]
    assert 2100 <= result["value"] < 2500

    # Nothing slow ran since: only the checks' own quick statements.
    result = run_check(pytester, config, check)
    assert result["severity"] == "ok", result["reason"]
    assert result["value"] < 100
    assert "pg_sleep" not in json.dumps(result["evidence"])

    # After a reset the counters went down: the current values are the delta.
    db.execute("SELECT pg_stat_statements_reset()", "SELECT pg_sleep(0.6)")
    result = run_check(pytester, config, check)
    assert result["severity"] == "warning", result["reason"]
    assert 600 <= result["value"] < 1000


@pytest.mark.slow
def test_statement_deltas_handle_resets_and_new_statements(
    new_database: Callable[..., Database],
) -> None:
    db = new_database()
    db.execute("SELECT pg_sleep(0.01)", "SELECT pg_sleep(0.01)", "SELECT pg_sleep(0.01)")
    queryid = scalar(
        db.admin_dsn,
        "SELECT queryid::text FROM pg_stat_statements WHERE query = 'SELECT pg_sleep($1)'",
    )
    with psycopg.connect(db.monitor_dsn, autocommit=True) as monitor:
        reset_at = scalar(
            db.monitor_dsn,
            "SELECT extract(epoch FROM stats_reset)::float8 FROM pg_stat_statements_info",
        )

        def sleeps(previous: dict[str, float]) -> int | None:
            document = {name: {"value": value, "at": 0.0} for name, value in previous.items()}
            deltas = statement_deltas(monitor, Samples(document))
            calls = [d["calls"] for d in deltas if d["queryid"] == queryid]
            return calls[0] if calls else None

        before = {f"calls:{queryid}": 1.0, f"total:{queryid}": 5.0}
        assert sleeps({"stats_reset": reset_at, **before}) == 2  # 3 calls now, 1 before
        assert sleeps({"stats_reset": reset_at - 60, **before}) == 3  # reset since: all 3
        went_down = {f"calls:{queryid}": 7.0, f"total:{queryid}": 99.0}
        assert sleeps({"stats_reset": reset_at, **went_down}) == 3
        assert sleeps({"stats_reset": reset_at}) == 3  # new to the kept set: all 3
        total_down = {f"calls:{queryid}": 3.0, f"total:{queryid}": 10.0**6}
        assert sleeps({"stats_reset": reset_at, **total_down}) == 3  # a reset too
        no_call_since = {f"calls:{queryid}": 3.0, f"total:{queryid}": 0.0}
        assert sleeps({"stats_reset": reset_at, **no_call_since}) is None


@pytest.mark.slow
def test_statement_samples_kept_between_runs_are_bounded(
    pytester: pytest.Pytester, new_database: Callable[..., Database]
) -> None:
    db = new_database()
    many = 2 * STATEMENTS_KEPT_PER_RANKING + 100
    # Distinct shapes are distinct statements (constants are normalised away).
    db.execute(*(f"SELECT {' + '.join(['1'] * n)}" for n in range(1, many + 1)))
    assert scalar(db.admin_dsn, "SELECT count(*) FROM pg_stat_statements") > many
    config = write_config(pytester, postgres_dsn=db.monitor_dsn)
    run_check(pytester, config, "check_statement_mean_time")
    state = json.loads((pytester.path / "out" / "state-test.json").read_text())
    kept = state["samples"]["db.statement_mean_time"]
    assert "stats_reset" in kept
    # calls and total per statement, for at most 250 by total time and 250 by mean
    assert 2 * STATEMENTS_KEPT_PER_RANKING < len(kept) <= 1 + 4 * STATEMENTS_KEPT_PER_RANKING


@pytest.mark.slow
def test_statement_mean_time_without_the_extension_is_unknown(
    pytester: pytest.Pytester, new_database: Callable[..., Database]
) -> None:
    db = new_database(extension=False)
    config = write_config(pytester, postgres_dsn=db.monitor_dsn)
    result = run_check(pytester, config, "check_statement_mean_time")
    assert result["severity"] == "unknown"
    assert "pg_stat_statements is not available in this database" in result["reason"]


# -- db.size ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_size_against_the_configured_disk_capacity(
    pytester: pytest.Pytester, new_database: Callable[..., Database]
) -> None:
    db = new_database(extension=False)
    size: int = scalar(db.admin_dsn, "SELECT pg_database_size(current_database())")

    def capacity_at(percent: int) -> tuple[int, int]:
        """The capacities that put ``size`` just below and just above ``percent``."""
        low, high = divmod(size * 100, percent)
        return low + 1, low if high else low - 1

    # pg_database_size counts a few files that are not pages (PG_VERSION, ...), so 80%
    # exactly is rarely a whole number of bytes; tests/test_catalogue.py pins "at".
    below_80, above_80 = capacity_at(80)
    below_90, above_90 = capacity_at(90)
    tiny = 1e-4
    cases = [  # capacity, the value's bounds, severity
        (10 * size, (10, 10), "ok"),
        (below_80, (80 - tiny, 80), "ok"),
        (above_80, (80, 80 + tiny), "warning"),
        (below_90, (90 - tiny, 90), "warning"),
        (above_90, (90, 90 + tiny), "critical"),
        (size, (100, 100), "critical"),
    ]
    for capacity, (low, high), severity in cases:
        config = write_config(pytester, postgres_dsn=db.monitor_dsn, database_disk_bytes=capacity)
        result = run_check(pytester, config, "check_size")
        assert result["severity"] == severity, (capacity, result["reason"])
        assert result["value"] == size * 100 / capacity
        assert low <= result["value"] <= high
        assert result["value"] not in {80, 90}
        assert result["evidence"] == {
            "database": db.name,
            "bytes": size,
            "capacity_bytes": capacity,
        }

    config = write_config(pytester, postgres_dsn=db.monitor_dsn, database_disk_bytes=None)
    result = run_check(pytester, config, "check_size")
    assert result["severity"] == "skipped"
    assert "params.database_disk_bytes is not configured for environment 'test'" in result["reason"]


# -- db.dead_tuples -----------------------------------------------------------------------------


@pytest.mark.slow
def test_dead_tuples_ratio_of_the_worst_large_enough_table(
    pytester: pytest.Pytester, new_database: Callable[..., Database]
) -> None:
    db = new_database(extension=False)
    no_vacuum = "WITH (autovacuum_enabled = false)"
    # 999 rows, half dead: below dead_tuples_min_rows = 1000, so not counted.
    db.execute(
        f"CREATE TABLE small (id int) {no_vacuum}",
        "INSERT INTO small SELECT generate_series(1, 999)",
        "DELETE FROM small WHERE id <= 500",
    )

    def dead(table: str) -> int:
        value: int = scalar(
            db.admin_dsn,
            "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname = %s",
            [table],
        )
        return value

    def wait_dead(table: str, count: int) -> None:
        wait_for(lambda: dead(table) == count, f"statistics of {table}")

    wait_dead("small", 500)
    config = write_config(pytester, postgres_dsn=db.monitor_dsn, dead_tuples_min_rows=1000)
    result = run_check(pytester, config, "check_dead_tuples")
    assert (result["severity"], result["value"]) == ("ok", 0)

    for deleted, severity in [(100, "ok"), (101, "warning"), (250, "warning"), (251, "critical")]:
        db.execute(
            "DROP TABLE IF EXISTS bloat",
            f"CREATE TABLE bloat (id int, note text) {no_vacuum}",
            "INSERT INTO bloat SELECT i, 'order ' || i FROM generate_series(1, 1000) AS i",
            f"DELETE FROM bloat WHERE id <= {deleted}",
        )
        wait_dead("bloat", deleted)
        result = run_check(pytester, config, "check_dead_tuples")
        assert result["severity"] == severity, result["reason"]
        assert result["value"] == deleted / 10  # of 1000 rows: 10.0%, 10.1%, 25.0%, 25.1%
        [worst] = result["evidence"]["worst_tables"]
        assert (worst["relname"], worst["n_live_tup"], worst["n_dead_tup"]) == (
            "bloat",
            1000 - deleted,
            deleted,
        )

    config = write_config(pytester, postgres_dsn=db.monitor_dsn, dead_tuples_min_rows=999)
    result = run_check(pytester, config, "check_dead_tuples")
    assert result["severity"] == "critical"
    assert result["value"] == pytest.approx(50_000 / 999)
    assert [t["relname"] for t in result["evidence"]["worst_tables"]] == ["small", "bloat"]

    config = write_config(pytester, postgres_dsn=db.monitor_dsn, dead_tuples_min_rows=1001)
    result = run_check(pytester, config, "check_dead_tuples")
    assert (result["severity"], result["value"]) == ("ok", 0)
    assert result["evidence"] == {"min_rows": 1001, "worst_tables": []}
