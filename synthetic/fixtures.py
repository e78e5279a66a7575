"""Fixtures every check may use: the environment, the BFF client, samples."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from synthetic.config import Config, Environment
from synthetic.errors import NotConfigured
from synthetic.extras import require as require_extra
from synthetic.measure.http import BFFClient, HttpSession
from synthetic.run_state import run_state
from synthetic.state import Samples
from synthetic.waits import waiting_on

if TYPE_CHECKING:
    import psycopg
    import redis

    from synthetic.logs.readings import LogReadings

T = TypeVar("T")


def _waiting_class(base: type[T], kind: str, methods: tuple[str, ...]) -> type[T]:
    """``base`` with each of ``methods`` marked as waiting on the target
    (`synthetic.waits`): a check stopped inside one was let down by it."""

    def waiting(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with waiting_on(kind, kind):
                return method(*args, **kwargs)

        return call

    namespace = {name: waiting(getattr(base, name)) for name in methods}
    return type(f"Waiting{base.__name__}", (base,), namespace)


def _wait_on_target(pool: Any, kind: str, methods: tuple[str, ...]) -> None:
    """The connections ``pool`` makes from now on wait on the target in ``methods``."""
    pool.connection_class = _waiting_class(pool.connection_class, kind, methods)


def _require(environment: Environment, key: str) -> Any:
    """The configured value, or skip the check naming what is missing."""
    try:
        return environment.require(key)
    except NotConfigured as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def synthetic_config(request: pytest.FixtureRequest) -> Config:
    """The loaded config (``synthetic.toml`` or ``[tool.synthetic]``)."""
    return run_state(request.config).config


@pytest.fixture(scope="session")
def synthetic_env(synthetic_config: Config) -> Environment:
    """The selected environment (``--env``, ``SYNTHETIC_ENV``, or the default)."""
    return synthetic_config.environment


@pytest.fixture(scope="session")
def _synthetic_http(
    request: pytest.FixtureRequest, synthetic_env: Environment
) -> Iterator[HttpSession]:
    if not synthetic_env.metrics_url:
        _require(synthetic_env, "base_url")
    state = run_state(request.config)
    session = HttpSession(synthetic_env, run_id=state.run_id, masker=state.config.masker)
    yield session
    session.close()


@pytest.fixture
def bff(
    request: pytest.FixtureRequest, synthetic_env: Environment, _synthetic_http: HttpSession
) -> Iterator[BFFClient]:
    """An httpx-backed client of the portal's BFF at the environment's ``base_url``.

    Connection errors and 502/503/504 are retried within ``retry_budget_s``;
    every request carries ``X-Correlation-Id: synthetic-<run id>-<check>``.
    """
    _require(synthetic_env, "base_url")
    yield BFFClient(_synthetic_http, check=request.node.name)
    _synthetic_http.release_large_bodies()


@pytest.fixture
def http_client(request: pytest.FixtureRequest, synthetic_env: Environment) -> Iterator[BFFClient]:
    """The `bff` client without its need for ``base_url``: for absolute URLs such as
    ``metrics_url``, which work when only ``metrics_url`` is configured. Skips when
    neither is."""
    if not (synthetic_env.base_url or synthetic_env.metrics_url):
        pytest.skip(
            f"neither base_url nor metrics_url is configured for environment '{synthetic_env.name}'"
        )
    session: HttpSession = request.getfixturevalue("_synthetic_http")
    yield BFFClient(session, check=request.node.name)
    session.release_large_bodies()


@pytest.fixture
def samples(request: pytest.FixtureRequest) -> Samples:
    """This check's samples from the previous run, and a place to record new ones."""
    return run_state(request.config).samples_for(request.node)


@pytest.fixture(scope="session")
def redis_client(synthetic_env: Environment) -> Iterator[redis.Redis]:
    """A Redis client for the environment's ``redis_url``: decoded responses,
    connect and read timeouts of ``timeout_s``. Skips when ``redis_url`` is unset."""
    url = _require(synthetic_env, "redis_url")
    import redis

    timeout = synthetic_env.timeout_s
    client = redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        client_name="synthetic",
    )
    _wait_on_target(client.connection_pool, "redis", ("connect", "read_response"))
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres(synthetic_env: Environment) -> Iterator[psycopg.Connection[Any]]:
    """A read-only PostgreSQL connection for ``postgres_dsn``: autocommit,
    ``default_transaction_read_only``, a ``statement_timeout`` of ``timeout_s``.
    Needs no superuser (``pg_monitor`` lets it see every session). Skips when
    ``postgres_dsn`` is unset."""
    dsn = _require(synthetic_env, "postgres_dsn")
    require_extra("postgres", "postgres_dsn (the postgres fixture)")
    import psycopg

    timeout_ms = int(synthetic_env.timeout_s * 1000)
    with waiting_on("postgres", "postgres"):
        connection = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, round(synthetic_env.timeout_s)),
            application_name="synthetic",
            options=(
                f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms} "
                "-c default_transaction_read_only=on"
            ),
            cursor_factory=_waiting_class(psycopg.Cursor, "postgres", ("execute",)),
        )
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def log_analysis(request: pytest.FixtureRequest, synthetic_env: Environment) -> LogReadings:
    """The run's log readings, from where ``logs.source`` says the lines are.

    ``file`` (the default): the analysis of the environment's ``log_files``, new
    lines since the previous run folded into per-minute aggregates; skips when
    ``log_files`` is unset, and a file that cannot be read makes the log checks
    UNKNOWN, naming it. ``loki``, ``cloudwatch``, ``prometheus``: the backend's
    answers at this moment (`synthetic.logs.sources`); a backend that does not
    answer makes the log checks unreachable (one ``logs`` root cause).
    Either way read once per run however many processes ask
    (see `synthetic.logs.shared`).
    """
    from synthetic.errors import MeasurementError
    from synthetic.logs.shared import analysis_once

    state = run_state(request.config)
    settings = synthetic_env.logs
    # Unset log files skip the log checks before anything heavy is loaded.
    files: tuple[str, ...] = ()
    if settings.source == "file":
        files = _require(synthetic_env, "log_files")
    require_extra("logs", "the log checks (log_analysis)")
    if settings.source != "file":
        from synthetic.logs.sources.read import read_backend, readings

        document = analysis_once(
            state.results_dir,
            state.run_id,
            lambda: read_backend(synthetic_env),
            timeout_s=synthetic_env.check_timeout_s,
        )
        return readings(document, synthetic_env)

    from synthetic.logs.analysis import analyse
    from synthetic.logs.metrics import LogMetrics

    def compute() -> dict[str, Any]:
        return analyse(files, settings, state.previous.get("logs"), masker=state.config.masker)

    document = analysis_once(
        state.results_dir, state.run_id, compute, timeout_s=synthetic_env.check_timeout_s
    )
    metrics = LogMetrics(document, settings)
    errors = metrics.file_errors()
    if errors:
        raise MeasurementError("; ".join(errors))
    return metrics
