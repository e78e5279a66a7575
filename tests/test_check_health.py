"""The health checks (checks/check_health.py and integration.health of
checks/check_external.py) run as a user runs them: against the sandbox, which
serves the guide's bodies, and against a real NestJS BFF whose health
endpoints are @nestjs/terminus's own (tests/node/nest_bff.js, the fixture
``nest_bff`` of tests/support/node_apps.py).

The NestJS app needs Node and the npm packages `.ci/run` pins into
`.ci/tools`; without them its tests are skipped, or fail when `CI` is set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Imported before pytester's in-process runs, which drop the modules they
# imported: an httpcore imported anew there would not be the one httpx maps.
import httpcore  # noqa: F401
import httpx
import pytest

from synthetic.results import metric_key
from synthetic.sandbox import Sandbox
from tests.support.catalogue_runs import CHECKS, environment_toml, run_check_file
from tests.support.node_apps import NodeApp

HEALTH_METRICS = ("health.status", "health.check", "integration.health")


def write_config(pytester: pytest.Pytester, base_url: str, **keys: Any) -> Path:
    settings = {"base_url": base_url, "timeout_s": 5, "retries": 0, **keys}
    lines = environment_toml("test", settings)
    path = pytester.path / "synthetic.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def health_run(
    pytester: pytest.Pytester, config: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The health checks' results by key, e.g. ``integration.health{integration="whmcs"}``,
    and the whole results.json."""
    results, document = run_check_file(
        pytester, CHECKS / "check_health.py", config, str(CHECKS / "check_external.py"),
        "-k", "health_status or health_entry or integration_health or check_endpoint",
    )  # fmt: skip
    return {metric_key(c["metric"], c["labels"]): c for c in results.values()}, document


def run_health_checks(pytester: pytest.Pytester, config: Path) -> dict[str, dict[str, Any]]:
    return health_run(pytester, config)[0]


def severities(results: dict[str, dict[str, Any]], *metrics: str) -> dict[str, str]:
    return {key: c["severity"] for key, c in results.items() if c["metric"] in metrics}


# -- against the sandbox (the guide's shapes) --------------------------------------------------


def test_the_guides_bodies_are_read_with_the_default_entries(pytester: pytest.Pytester) -> None:
    with Sandbox("degraded") as sandbox:
        health = httpx.get(f"{sandbox.url}/health", timeout=5).json()
        services = httpx.get(f"{sandbox.url}/auth/health-check", timeout=5).json()["services"]
        results = run_health_checks(pytester, write_config(pytester, sandbox.url))
    # The guide: a health check other than "ok" is critical; an integration
    # "degraded" is a warning, anything else but "ok" critical.
    expected = {
        f'health.check{{name="{name}"}}': "ok" if status == "ok" else "critical"
        for name, status in health["checks"].items()
    }
    expected |= {
        f'integration.health{{integration="{name}"}}': {"ok": "ok", "degraded": "warning"}.get(
            status, "critical"
        )
        for name, status in services.items()
    }
    expected["health.status"] = "warning"  # "degraded"
    assert severities(results, *HEALTH_METRICS) == expected
    assert set(health["checks"]) == {"database", "cache"}  # the defaults cover the guide
    whmcs = results['integration.health{integration="whmcs"}']
    assert whmcs["evidence"]["shape"] == "services"
    assert whmcs["evidence"]["entries"] == services


def test_a_503_with_the_guides_body_is_read(pytester: pytest.Pytester) -> None:
    with Sandbox("errors") as sandbox:
        answer = httpx.get(f"{sandbox.url}/health", timeout=5)
        results = run_health_checks(pytester, write_config(pytester, sandbox.url))
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"database": "fail", "cache": "ok"}
    assert severities(results, "health.check") == {
        'health.check{name="database"}': "critical",
        'health.check{name="cache"}': "ok",
    }
    assert results['endpoint.status{path="/health"}']["value"] == "HTTP 503"
    assert results['health.check{name="database"}']["evidence"]["http_status"] == 503


def test_configured_entries_absent_from_the_body_are_unknown_naming_them(
    pytester: pytest.Pytester,
) -> None:
    with Sandbox("healthy") as sandbox:
        config = write_config(
            pytester, sandbox.url, health_checks=["database", "redis"], integrations=[]
        )
        results, _ = run_check_file(
            pytester, CHECKS / "check_health.py", config, str(CHECKS / "check_external.py"),
            "-k", "health_entry or integration_health",
        )  # fmt: skip
    by_key = {metric_key(c["metric"], c["labels"]): c for c in results.values()}
    assert by_key['health.check{name="database"}']["severity"] == "ok"
    redis = by_key['health.check{name="redis"}']
    assert redis["severity"] == "unknown"
    assert redis["reason"] == (
        "health.check{name=\"redis\"}: GET /health (shape: checks): no entry 'redis'; "
        "entries: database, cache"
    )
    [integrations] = [c for c in results.values() if c["metric"] == "integration.health"]
    assert integrations["severity"] == "skipped"
    assert "params.integrations is not configured for environment 'test'" in integrations["reason"]


def test_a_check_that_parametrizes_its_own_name_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\n")
    portal = pytester.mkdir("portal")
    (portal / "conftest.py").write_text((CHECKS / "conftest.py").read_text(), encoding="utf-8")
    (portal / "check_names.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.parametrize('name', ['disk'])\n"
        "@pytest.mark.critical(\"!= 'ok'\")\n"
        "def check_own(name):\n    return 'ok'\n\n"
        "@pytest.mark.critical(\"!= 'ok'\")\n"
        "def check_configured(name):\n    return 'ok'\n",
        encoding="utf-8",
    )
    config = write_config(pytester, "http://127.0.0.1:9", health_checks=["a", "b"])
    results, _ = run_check_file(pytester, portal, config)
    assert sorted(results) == [
        "check_configured[a]",
        "check_configured[b]",
        "check_own[disk]",
    ]


# -- against a real @nestjs/terminus app --------------------------------------------------------


def set_indicators(url: str, **states: Any) -> None:
    """Set the app's indicators, the others up: ``whmcs="down"``, or
    ``whmcs={"status": "down", "message": "..."}``."""
    every = dict.fromkeys(("database", "cache", "whmcs", "salesforce"), "up")
    answer = httpx.put(f"{url}/__test/health", json={**every, **states}, timeout=5)
    assert answer.status_code == 200, answer.text


def expected_from(url: str) -> dict[str, str]:
    """The severities the guide gives to what terminus answered, read from the raw bodies:
    a health check must be "up"; an integration "up", or "degraded" for a warning
    (terminus 12's status; the pinned terminus 11 answers only "up" or "down")."""
    health = httpx.get(f"{url}/health", timeout=5).json()["details"]
    auth = httpx.get(f"{url}/auth/health-check", timeout=5).json()["details"]
    expected = {
        f'health.check{{name="{name}"}}': "ok" if entry["status"] == "up" else "critical"
        for name, entry in health.items()
    }
    expected |= {
        f'integration.health{{integration="{name}"}}': {"up": "ok", "degraded": "warning"}.get(
            entry["status"], "critical"
        )
        for name, entry in auth.items()
    }
    return expected


@pytest.mark.slow
def test_terminus_all_up_is_all_ok(pytester: pytest.Pytester, nest_bff: NodeApp) -> None:
    set_indicators(nest_bff.url)
    assert httpx.get(f"{nest_bff.url}/auth/health-check", timeout=5).status_code == 200
    results = run_health_checks(pytester, write_config(pytester, nest_bff.url))
    expected = expected_from(nest_bff.url)
    assert set(expected.values()) == {"ok"}
    assert severities(results, "health.check", "integration.health") == expected
    assert results["health.status"]["severity"] == "ok"
    for path in ("/health", "/auth/health-check"):
        assert results[f'endpoint.status{{path="{path}"}}']["severity"] == "ok"
    evidence = results['integration.health{integration="whmcs"}']["evidence"]
    assert evidence["shape"] == "terminus"
    assert evidence["entries"] == {"database": "up", "whmcs": "up", "salesforce": "up"}


@pytest.mark.slow
def test_terminus_whmcs_down_is_its_503_read(pytester: pytest.Pytester, nest_bff: NodeApp) -> None:
    set_indicators(nest_bff.url, whmcs="down")
    answer = httpx.get(f"{nest_bff.url}/auth/health-check", timeout=5)
    assert answer.status_code == 503  # terminus's own answer, with its JSON body
    assert answer.json()["status"] == "error"
    assert set(answer.json()["error"]) == {"whmcs"}
    message = answer.json()["error"]["whmcs"]["message"]

    results = run_health_checks(pytester, write_config(pytester, nest_bff.url))
    assert severities(results, "health.check", "integration.health") == expected_from(nest_bff.url)
    whmcs = results['integration.health{integration="whmcs"}']
    assert whmcs["severity"] == "critical"
    assert whmcs["value"] == "down"
    assert whmcs["reason"] == (
        "integration.health{integration=\"whmcs\"} = 'down' "
        f"(critical not in ['ok', 'degraded']): {message}"
    )
    assert whmcs["evidence"]["http_status"] == 503
    for name in ("database", "salesforce"):
        assert results[f'integration.health{{integration="{name}"}}']["severity"] == "ok"
    assert "unknown" not in severities(results, *HEALTH_METRICS).values()
    assert results['endpoint.status{path="/auth/health-check"}']["value"] == "HTTP 503"
    assert results["health.status"]["severity"] == "ok"  # /health has no whmcs


@pytest.mark.slow
def test_terminus_database_down_fails_both_endpoints(
    pytester: pytest.Pytester, nest_bff: NodeApp
) -> None:
    set_indicators(nest_bff.url, database={"status": "down", "message": "Connection terminated"})
    results = run_health_checks(pytester, write_config(pytester, nest_bff.url))
    expected = expected_from(nest_bff.url)
    assert severities(results, "health.check", "integration.health") == expected
    assert expected['health.check{name="database"}'] == "critical"
    assert expected['integration.health{integration="database"}'] == "critical"
    assert results['health.check{name="database"}']["reason"].endswith(": Connection terminated")
    # health.status reads terminus's own "error" as critical, unchanged.
    assert (results["health.status"]["value"], results["health.status"]["severity"]) == (
        "error",
        "critical",
    )
    assert results['endpoint.status{path="/health"}']["value"] == "HTTP 503"


@pytest.mark.slow
def test_terminus_message_is_masked(pytester: pytest.Pytester, nest_bff: NodeApp) -> None:
    password = "Sup3r-s3cret-pw"
    message = f"GET https://monitor:{password}@whmcs.test/api: 502"
    set_indicators(nest_bff.url, whmcs={"status": "down", "message": message})
    answer = httpx.get(f"{nest_bff.url}/auth/health-check", timeout=5)
    assert answer.json()["error"]["whmcs"]["message"] == message  # terminus says it in clear
    results, document = health_run(pytester, write_config(pytester, nest_bff.url))
    whmcs = results['integration.health{integration="whmcs"}']
    assert whmcs["severity"] == "critical"
    assert whmcs["reason"].endswith(": GET https://monitor:***@whmcs.test/api: 502")
    assert password not in json.dumps(document)


@pytest.mark.slow
def test_terminus_configured_entries_it_lacks_are_unknown(
    pytester: pytest.Pytester, nest_bff: NodeApp
) -> None:
    set_indicators(nest_bff.url)
    config = write_config(
        pytester,
        nest_bff.url,
        health_checks=["database", "memory_heap"],
        integrations=["whmcs", "freebit"],
    )
    results = run_health_checks(pytester, config)
    assert severities(results, "health.check", "integration.health") == {
        'health.check{name="database"}': "ok",
        'health.check{name="memory_heap"}': "unknown",
        'integration.health{integration="whmcs"}': "ok",
        'integration.health{integration="freebit"}': "unknown",
    }
    assert results['integration.health{integration="freebit"}']["reason"].endswith(
        "GET /auth/health-check (shape: terminus): no entry 'freebit'; "
        "entries: database, whmcs, salesforce"
    )
