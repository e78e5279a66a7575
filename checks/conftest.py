"""Fixtures the Customer Portal's checks share: snapshots of the BFF's endpoints.

Each endpoint is fetched once per process and run (``BFFClient.snapshot``),
however many checks read it; a connection error is shared the same way, so
every dependent check reports it.
"""

from __future__ import annotations

from typing import Any

import pytest

from checks.settings import PortalSettings, portal_settings
from synthetic import (
    BFFClient,
    ConfigError,
    HealthBody,
    read_snapshot,
    selected_config,
    selected_environment,
)

HEALTH_ENDPOINTS = (
    "/health",
    "/health/queues",
    "/health/queues/whmcs",
    "/health/queues/salesforce",
    "/health/catalog/cache",
    "/auth/health-check",
)


# Checks repeated for each name in a list of the portal's settings: argument -> key.
CONFIGURED_LABELS = {
    "queue": "bullmq_queues",  # one check per BullMQ queue
    "name": "health_checks",  # one per entry of GET /health
    "integration": "integrations",  # one per entry of GET /auth/health-check
}


# The log checks of a dependency, and where its thresholds are in the `logs` table.
DEPENDENCY_LEVELS = {
    "external.response_time_p95": "response_time_p95",
    "external.error_rate": "error_rate",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One check per name the environment lists (`CONFIGURED_LABELS`), the name as
    its label; an empty list skips the check with the key in the reason. One per
    dependency of the ``logs`` table too, with that dependency's thresholds."""
    own = _parametrized(metafunc)
    if "dependency" in metafunc.fixturenames and "dependency" not in own:
        metafunc.parametrize("dependency", _dependencies(metafunc))
    for argument, key in CONFIGURED_LABELS.items():
        if argument not in metafunc.fixturenames or argument in own:
            continue
        config = selected_config(metafunc.config)
        names = getattr(_portal(metafunc.config), key)
        if names:
            metafunc.parametrize(argument, names)
        else:
            reason = f"params.{key} is not configured for environment '{config.environment.name}'"
            metafunc.parametrize(argument, [pytest.param(None, marks=pytest.mark.skip(reason))])


def _dependencies(metafunc: pytest.Metafunc) -> list[Any]:
    """The ``logs.dependencies`` as parameters, each marked with its own thresholds
    for the check's metric (Freebit's 3 s / 10 s p95 by default)."""
    logs = selected_environment(metafunc.config).logs
    marker = metafunc.definition.get_closest_marker("metric")
    metric = marker.args[0] if marker is not None and marker.args else None
    kind = DEPENDENCY_LEVELS.get(str(metric))
    params = []
    for name, dependency in logs.dependencies.items():
        levels = getattr(dependency, kind) if kind else None
        marks = [
            getattr(pytest.mark, level)(expression)
            for level in ("warning", "critical")
            if levels is not None and (expression := getattr(levels, level)) is not None
        ]
        params.append(pytest.param(name, marks=marks, id=name))
    if not params:
        reason = "logs.dependencies is empty: no dependency to measure"
        params.append(pytest.param(None, marks=pytest.mark.skip(reason)))
    return params


def _parametrized(metafunc: pytest.Metafunc) -> set[str]:
    """The arguments a check parametrizes itself: never taken from the config too."""
    names: set[str] = set()
    for marker in metafunc.definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        names.update(argnames)
    return names


_PORTAL_KEY = pytest.StashKey[PortalSettings]()


def _portal(config: pytest.Config) -> PortalSettings:
    """The portal's settings, validated once per process; a bad one ends the run with
    one line naming it (a usage error, not a collection error per check file)."""
    found = config.stash.get(_PORTAL_KEY, None)
    if found is None:
        try:
            found = portal_settings(selected_config(config))
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[_PORTAL_KEY] = found
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A bad portal setting ends the run before anything is collected, in one line."""
    if session.config.pluginmanager.has_plugin("synthetic-run"):  # synthetic is in use
        _portal(session.config)


@pytest.fixture(scope="session")
def portal(request: pytest.FixtureRequest) -> PortalSettings:
    """The portal's settings (``params``) of the selected environment (checks/settings.py)."""
    return _portal(request.config)


@pytest.fixture
def health(bff: BFFClient) -> Any:
    """GET /health as JSON. A 503 with a JSON body is an answer, not an error."""
    return bff.snapshot("/health").json()


@pytest.fixture
def queues(bff: BFFClient) -> Any:
    """GET /health/queues as JSON (2xx only)."""
    return bff.json("/health/queues")


@pytest.fixture
def auth_health(bff: BFFClient) -> Any:
    """GET /auth/health-check as JSON (2xx only)."""
    return bff.json("/auth/health-check")


@pytest.fixture
def health_body(bff: BFFClient, portal: PortalSettings) -> HealthBody:
    """GET /health read as named entries, whatever its shape (a 5xx body too)."""
    return read_snapshot(bff.snapshot("/health"), path=portal.health_entries.get("/health"))


@pytest.fixture
def auth_health_body(bff: BFFClient, portal: PortalSettings) -> HealthBody:
    """GET /auth/health-check read as named entries, whatever its shape (a 5xx body too)."""
    path = portal.health_entries.get("/auth/health-check")
    return read_snapshot(bff.snapshot("/auth/health-check"), path=path)
