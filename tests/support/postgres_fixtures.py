"""A real PostgreSQL for the tests, shared by the session.

From a test module::

    from tests.support.postgres_fixtures import postgres_server  # noqa: F401

Missing binaries fail the test with how to install them: CI installs
PostgreSQL, so a silent skip would hide lost coverage.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from synthetic.sandbox.postgres_server import PostgresServer, PostgresServerError

MAX_CONNECTIONS = 20


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL on a free loopback port, ``max_connections`` 20, ``pg_stat_statements``
    preloaded; ``admin_dsn`` (superuser) and ``monitor_dsn`` (``pg_monitor``)."""
    server = PostgresServer(max_connections=MAX_CONNECTIONS)
    problem: str | None = None
    try:
        server.start()
    except PostgresServerError as exc:
        problem = str(exc)
    if problem is not None:
        # Outside the except block: the report shows the message alone.
        pytest.fail(f"cannot start PostgreSQL for the tests: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
