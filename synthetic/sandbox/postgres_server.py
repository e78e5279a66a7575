"""A throw-away PostgreSQL on loopback, for the tests and for ``synthetic demo``.

`PostgresServer` runs ``initdb`` into a fresh temporary directory, starts
``postgres`` on a free loopback port with ``pg_stat_statements`` preloaded,
and prepares what the database checks expect of a real deployment: a
``portal`` database with the extension, and a non-superuser ``monitor``
role granted ``pg_monitor``::

    with PostgresServer() as pg:
        seed_portal(pg.admin_dsn)
        psycopg.connect(pg.monitor_dsn)  # what the checks use

``initdb`` and ``postgres`` refuse to run as root: as root, the server runs
as the ``postgres`` user (or ``run_as``), which owns the temporary directory.
It is stopped by PID (SIGINT, PostgreSQL's fast shutdown, then SIGKILL) and
its directory removed.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from synthetic.sandbox.processes import LOOPBACK, free_port, log_tail

ADMIN_USER: Final = "postgres"
MONITOR_USER: Final = "monitor"
DATABASE: Final = "portal"
START_TIMEOUT_S: Final = 15.0
STOP_TIMEOUT_S: Final = 10.0
_COMMAND_TIMEOUT_S: Final = 60.0
_PORT_ATTEMPTS: Final = 3
_SERVER_BINARIES: Final = ("initdb", "postgres")
_VERSIONED_BINS: Final = Path("/usr/lib/postgresql")


class PostgresServerError(RuntimeError):
    """The server could not be found, initialised, started or prepared (one line)."""


def find_postgres_bin() -> Path | None:
    """The directory of ``initdb``, ``postgres`` and ``pg_ctl``.

    ``pg_ctl`` on PATH (through its symlinks: Debian's wrappers live
    elsewhere) when ``initdb`` and ``postgres`` sit beside it, else the newest
    ``/usr/lib/postgresql/<version>/bin``; None when there is neither.
    """
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        for candidate in (Path(on_path).resolve().parent, Path(on_path).parent):
            if _has_server_binaries(candidate):
                return candidate
    versions = []
    if _VERSIONED_BINS.is_dir():
        for entry in _VERSIONED_BINS.iterdir():
            if entry.name.isdigit() and _has_server_binaries(entry / "bin"):
                versions.append((int(entry.name), entry / "bin"))
    return max(versions)[1] if versions else None


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _SERVER_BINARIES)


class PostgresServer:
    """A PostgreSQL server on a free loopback port, in a temporary directory.

    ``admin_dsn`` is the superuser (for tests to create load and tables);
    ``monitor_dsn`` is the ``monitor`` role (``pg_monitor``, no superuser),
    what the checks use. Both point at the ``portal`` database.
    """

    def __init__(self, *, max_connections: int = 20, run_as: str | None = None) -> None:
        if max_connections < 5:
            raise ValueError("max_connections must be at least 5 (3 are reserved for superusers)")
        self.max_connections = max_connections
        self.run_as = run_as if run_as is not None else (ADMIN_USER if os.geteuid() == 0 else None)
        self.port: int | None = None
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_password = secrets.token_hex(12)
        self._monitor_password = secrets.token_hex(12)

    # -- public -----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def admin_dsn(self) -> str:
        return self._dsn(ADMIN_USER, self._admin_password)

    @property
    def monitor_dsn(self) -> str:
        return self._dsn(MONITOR_USER, self._monitor_password)

    def _dsn(self, user: str, password: str, database: str = DATABASE) -> str:
        if self.port is None:
            raise PostgresServerError("the PostgreSQL server is not started")
        return f"postgresql://{user}:{password}@{LOOPBACK}:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """initdb, start, wait until it answers, create ``portal`` and ``monitor``."""
        if self._process is not None:
            return self
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            raise PostgresServerError(
                "PostgreSQL server binaries (initdb, postgres) not found on PATH or in "
                "/usr/lib/postgresql/*/bin: apt-get install -y postgresql-15"
            )
        try:
            self._initdb(bin_dir)
            self._launch(bin_dir)
            self._prepare()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the postmaster by PID and remove the directory; safe to call again."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back, disconnect, exit.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- steps ------------------------------------------------------------------------------

    def _user_kwargs(self) -> dict[str, Any]:
        """Popen arguments that run a command as ``run_as`` (initdb refuses root)."""
        if self.run_as is None:
            return {}
        try:
            account = pwd.getpwnam(self.run_as)
        except KeyError:
            raise PostgresServerError(
                f"user {self.run_as!r} does not exist: initdb refuses to run as root, "
                "so PostgreSQL runs as that user (useradd --system postgres)"
            ) from None
        if os.geteuid() == account.pw_uid:
            return {}
        if os.geteuid() != 0:
            raise PostgresServerError(
                f"cannot run PostgreSQL as {self.run_as!r}: only root can switch user"
            )
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _initdb(self, bin_dir: Path) -> None:
        user = self._user_kwargs()
        self.directory = Path(tempfile.mkdtemp(prefix="synthetic-pg-"))
        (self.directory / "sock").mkdir()
        password_file = self.directory / "pwfile"
        password_file.write_text(self._admin_password + "\n", encoding="utf-8")
        if user:
            for path in (self.directory, self.directory / "sock", password_file):
                os.chown(path, user["user"], user["group"])
        done = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(self.directory / "data"),
                "--username",
                ADMIN_USER,
                "--pwfile",
                str(password_file),
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
            **user,
        )
        password_file.unlink()
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise PostgresServerError(
                f"initdb failed (exit {done.returncode}): {' | '.join(output[-3:])}"
            )

    def _launch(self, bin_dir: Path) -> None:
        assert self.directory is not None
        log = self.directory / "postgres.log"
        # Another process may take the free port before postgres binds it: then
        # postgres exits, and another port is tried.
        for _attempt in range(_PORT_ATTEMPTS):
            self.port = free_port()
            with log.open("ab") as handle:
                self._process = self._spawn(bin_dir, handle)
            if self._wait_until_ready(log):
                return
        raise PostgresServerError(
            f"postgres exited before accepting connections ({_PORT_ATTEMPTS} attempts); "
            f"log: {log_tail(log)}"
        )

    def _spawn(self, bin_dir: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self.directory is not None
        settings = {
            "listen_addresses": LOOPBACK,
            "shared_preload_libraries": "pg_stat_statements",
            "max_connections": str(self.max_connections),
            "fsync": "off",  # throw-away data: tests and demos need no durability
        }
        command = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.directory / "data"),
            "-p",
            str(self.port),
            "-k",
            str(self.directory / "sock"),
        ]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return subprocess.Popen(
            command,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the terminal reaches the caller, who stops it.
            start_new_session=True,
            **self._user_kwargs(),
        )

    def _wait_until_ready(self, log: Path) -> bool:
        """True once it accepts connections; False if it exited (port taken)."""
        import psycopg

        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                if "could not bind" in log_tail(log, 20) or "already in use" in log_tail(log, 20):
                    self._process = None
                    return False
                raise PostgresServerError(
                    f"postgres exited with status {self._process.returncode} while starting; "
                    f"log: {log_tail(log)}"
                )
            try:
                psycopg.connect(
                    self._dsn(ADMIN_USER, self._admin_password, "postgres"), connect_timeout=1
                ).close()
            except psycopg.OperationalError:
                time.sleep(0.05)
                continue
            return True
        raise PostgresServerError(
            f"postgres (pid {self._process.pid}) did not accept connections on port "
            f"{self.port} within {START_TIMEOUT_S:g} s; log: {log_tail(log)}"
        )

    def _prepare(self) -> None:
        import psycopg
        from psycopg import sql

        admin = self._dsn(ADMIN_USER, self._admin_password, "postgres")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(MONITOR_USER), sql.Literal(self._monitor_password)
                )
            )
            connection.execute(
                sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(MONITOR_USER))
            )
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


SEED_SQL: Final = """
CREATE TABLE IF NOT EXISTS customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    whmcs_client_id integer,
    salesforce_account_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    product text NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    amount_cents integer NOT NULL,
    status text NOT NULL,
    due_on date NOT NULL
);
"""

SEED_ROWS_SQL: Final = """
INSERT INTO customers (email, whmcs_client_id, salesforce_account_id)
SELECT 'customer' || i || '@example.com', 10000 + i, '001' || lpad(i::text, 15, '0')
FROM generate_series(1, 2000) AS i;
INSERT INTO orders (customer_id, product, status)
SELECT 1 + (i % 2000), (ARRAY['sim', 'fiber', 'vps', 'domain'])[1 + i % 4],
       (ARRAY['active', 'active', 'active', 'pending', 'cancelled'])[1 + i % 5]
FROM generate_series(1, 5000) AS i;
INSERT INTO invoices (order_id, amount_cents, status, due_on)
SELECT 1 + (i % 5000), 1000 + (i * 37) % 9000,
       (ARRAY['paid', 'paid', 'paid', 'unpaid', 'overdue'])[1 + i % 5],
       current_date + (i % 60) - 30
FROM generate_series(1, 8000) AS i;
"""


def seed_portal(admin_dsn: str) -> None:
    """Customers, orders and invoices with a few thousand rows (once).

    Some invoices are then paid (updated), as a portal does all day, so the
    database checks show real, non-zero values that are still healthy.
    """
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(SEED_SQL)
        row = connection.execute("SELECT count(*) FROM customers").fetchone()
        if row is not None and row[0] == 0:
            connection.execute(SEED_ROWS_SQL)
            connection.execute(
                "UPDATE invoices SET status = 'paid' WHERE status = 'unpaid' AND id % 4 = 0"
            )
        connection.execute(
            "SELECT c.email, count(o.id) FROM customers c LEFT JOIN orders o "
            "ON o.customer_id = c.id GROUP BY c.email ORDER BY 2 DESC LIMIT 10"
        ).fetchall()
