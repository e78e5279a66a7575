"""Test-only setup: hypothesis profiles, warnings as errors, shared helpers."""

from __future__ import annotations

import os

# httpx imports its transport (httpcore) on the first request. Import it here,
# before any in-process pytester run: pytester removes the modules a run
# imported, and an httpcore imported again has new exception classes that the
# first httpx no longer maps (a refused connection then escapes as httpcore's).
import httpcore._sync.connection_pool  # noqa: F401
import pytest

from tests.support.cli_runs import project  # noqa: F401 - a tiny project of checks
from tests.support.generate_helpers import generated  # noqa: F401 - generate's artifacts, once
from tests.support.node_apps import express_bff, fastify_bff, nest_bff  # noqa: F401
from tests.support.postgres_fixtures import postgres_server  # noqa: F401 - fixtures for every module
from tests.support.servers import redis_url, refused_port  # noqa: F401

# A `synthetic` run given a path under tests/ loads this conftest: it must
# import without the test-only packages, which a `pip install -e .` does not bring.
try:
    from hypothesis import settings
except ImportError:  # not a test environment
    pass
else:
    # CI runs more examples; a laptop run stays quick. No deadlines: CI machines stall.
    settings.register_profile("ci", max_examples=300, deadline=None)
    settings.register_profile("dev", max_examples=100, deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Where SYNTHETIC_* variables of the developer's shell could leak into a test.
SYNTHETIC_VARS = (
    "SYNTHETIC_ENV",
    "SYNTHETIC_CONFIG",
    "SYNTHETIC_RESULTS_DIR",
    "SYNTHETIC_FAIL_ON",
    "SYNTHETIC_SANDBOX_URL",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The framework's own tests treat warnings as errors; the checks (which
    # run in production against libraries we do not control) do not.
    here = os.path.dirname(__file__)
    for item in items:
        if not str(item.path).startswith(here):
            continue
        item.add_marker(pytest.mark.filterwarnings("error"), append=False)


@pytest.fixture(autouse=True)
def _clean_synthetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SYNTHETIC_VARS:
        monkeypatch.delenv(name, raising=False)
