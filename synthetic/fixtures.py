"""Fixtures every check may use: the environment, the BFF client, samples."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from synthetic.config import Config, Environment, NotConfigured
from synthetic.http import BFFClient, HttpSession
from synthetic.session import run_state
from synthetic.state import Samples


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
    try:
        synthetic_env.require("base_url")
    except NotConfigured as exc:
        pytest.skip(str(exc))
    session = HttpSession(synthetic_env, run_id=run_state(request.config).run_id)
    yield session
    session.close()


@pytest.fixture
def bff(request: pytest.FixtureRequest, _synthetic_http: HttpSession) -> BFFClient:
    """An httpx-backed client of the portal's BFF at the environment's ``base_url``.

    Connection errors and 502/503/504 are retried within ``retry_budget_s``;
    every request carries ``X-Correlation-Id: synthetic-<run id>-<check>``.
    """
    return BFFClient(_synthetic_http, check=request.node.name)


@pytest.fixture
def samples(request: pytest.FixtureRequest) -> Samples:
    """This check's samples from the previous run, and a place to record new ones."""
    return run_state(request.config).samples_for(request.node)
