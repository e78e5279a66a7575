"""The health checks (checks/check_health.py and integration.health of
checks/check_external.py) run as a user runs them: against the sandbox, which
serves the guide's bodies, and against a real NestJS BFF whose health
endpoints are @nestjs/terminus's own (tests/node/terminus_health.js).

The terminus app needs Node and the npm packages `.ci/run` pins into
`.ci/tools`; without them its tests are skipped, or fail when `CI` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Imported before pytester's in-process runs, which drop the modules they
# imported: an httpcore imported anew there would not be the one httpx maps.
import httpcore  # noqa: F401
import httpx
import pytest

from synthetic.results import metric_key
from synthetic.sandbox import Sandbox
from tests.catalogue_runs import CHECKS, run_check_file
from tests.servers import stop_process

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / ".ci" / "tools" / "node_modules"
TERMINUS_APP = REPO / "tests" / "node" / "terminus_health.js"
NODE_PACKAGES = ("@nestjs/core", "@nestjs/common", "@nestjs/platform-express", "@nestjs/terminus")
START_TIMEOUT_S = 30.0

HEALTH_METRICS = ("health.status", "health.check", "integration.health")


def write_config(pytester: pytest.Pytester, base_url: str, **keys: Any) -> Path:
    lines = ["[environments.test]", f'base_url = "{base_url}"', "timeout_s = 5", "retries = 0"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    path = pytester.path / "synthetic.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_health_checks(pytester: pytest.Pytester, config: Path) -> dict[str, dict[str, Any]]:
    """The health checks' results by key, e.g. ``integration.health{integration="whmcs"}``."""
    results, _ = run_check_file(
        pytester, CHECKS / "check_health.py", config, str(CHECKS / "check_external.py"),
        "-k", "health_status or health_entry or integration_health or check_endpoint",
    )  # fmt: skip
    return {metric_key(c["metric"], c["labels"]): c for c in results.values()}


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
    assert "integrations is not configured for environment 'test'" in integrations["reason"]


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


def node_or_skip() -> str:
    node = shutil.which("node")
    missing = [p for p in NODE_PACKAGES if not (TOOLS / p / "package.json").is_file()]
    if node is None or missing:
        what = "node" if node is None else ", ".join(missing)
        message = f"{what} not installed (.ci/tools/node_modules); `bash .ci/run` installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node


@contextlib.contextmanager
def terminus_app(node: str, log: Path) -> Iterator[str]:
    """Run tests/node/terminus_health.js on a port it picks (PORT=0); its URL.

    The app prints ``{"port": N}`` once it listens; output goes to ``log`` (a
    file, so a chatty app can never block on a full pipe). Stopped by PID.
    """
    environ = {**os.environ, "PORT": "0", "NODE_PATH": str(TOOLS), "NO_COLOR": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [node, str(TERMINUS_APP)],
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        port = announced_port(process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def announced_port(process: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith('{"port":'):
                port: int = json.loads(line)["port"]
                return port
        if process.poll() is not None:
            break
        time.sleep(0.05)
    output = log.read_text(encoding="utf-8", errors="replace")[-2000:]
    pytest.fail(f"the terminus app did not start: {output}", pytrace=False)


@pytest.fixture(scope="module")
def terminus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = node_or_skip()
    with terminus_app(node, tmp_path_factory.mktemp("terminus") / "app.log") as url:
        yield url


def set_indicators(url: str, **states: Any) -> None:
    """Set the app's indicators, the others up: ``whmcs="down"``, or
    ``whmcs={"status": "down", "message": "..."}``."""
    every = dict.fromkeys(("database", "cache", "whmcs", "salesforce"), "up")
    answer = httpx.put(f"{url}/__test/health", json={**every, **states}, timeout=5)
    assert answer.status_code == 200, answer.text


def expected_from(url: str) -> dict[str, str]:
    """The severities the guide gives to what terminus answered, read from the raw bodies:
    a health check must be "up"; an integration "up", or "degraded" for a warning."""
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
def test_terminus_all_up_is_all_ok(pytester: pytest.Pytester, terminus: str) -> None:
    set_indicators(terminus)
    assert httpx.get(f"{terminus}/auth/health-check", timeout=5).status_code == 200
    results = run_health_checks(pytester, write_config(pytester, terminus))
    expected = expected_from(terminus)
    assert set(expected.values()) == {"ok"}
    assert severities(results, "health.check", "integration.health") == expected
    assert results["health.status"]["severity"] == "ok"
    for path in ("/health", "/auth/health-check"):
        assert results[f'endpoint.status{{path="{path}"}}']["severity"] == "ok"
    evidence = results['integration.health{integration="whmcs"}']["evidence"]
    assert evidence["shape"] == "terminus"
    assert evidence["entries"] == {"database": "up", "whmcs": "up", "salesforce": "up"}


@pytest.mark.slow
def test_terminus_whmcs_down_is_its_503_read(pytester: pytest.Pytester, terminus: str) -> None:
    set_indicators(terminus, whmcs="down")
    answer = httpx.get(f"{terminus}/auth/health-check", timeout=5)
    assert answer.status_code == 503  # terminus's own answer, with its JSON body
    assert answer.json()["status"] == "error"
    assert set(answer.json()["error"]) == {"whmcs"}
    message = answer.json()["error"]["whmcs"]["message"]

    results = run_health_checks(pytester, write_config(pytester, terminus))
    assert severities(results, "health.check", "integration.health") == expected_from(terminus)
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
    pytester: pytest.Pytester, terminus: str
) -> None:
    set_indicators(terminus, database={"status": "down", "message": "Connection terminated"})
    results = run_health_checks(pytester, write_config(pytester, terminus))
    expected = expected_from(terminus)
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
def test_terminus_degraded_indicator_is_a_warning(pytester: pytest.Pytester, terminus: str) -> None:
    set_indicators(terminus, salesforce="degraded")
    answer = httpx.get(f"{terminus}/auth/health-check", timeout=5)
    assert (answer.status_code, answer.json()["status"]) == (200, "degraded")
    results = run_health_checks(pytester, write_config(pytester, terminus))
    assert severities(results, "health.check", "integration.health") == expected_from(terminus)
    assert results['integration.health{integration="salesforce"}']["severity"] == "warning"


@pytest.mark.slow
def test_terminus_message_is_masked(pytester: pytest.Pytester, terminus: str) -> None:
    password = "Sup3r-s3cret-pw"
    set_indicators(
        terminus,
        whmcs={"status": "down", "message": f"GET https://monitor:{password}@whmcs.test/api: 502"},
    )
    config = write_config(pytester, terminus)
    results = run_health_checks(pytester, config)
    whmcs = results['integration.health{integration="whmcs"}']
    assert whmcs["severity"] == "critical"
    assert whmcs["reason"].endswith(": GET https://monitor:***@whmcs.test/api: 502")
    assert password not in json.dumps(results)


@pytest.mark.slow
def test_terminus_configured_entries_it_lacks_are_unknown(
    pytester: pytest.Pytester, terminus: str
) -> None:
    set_indicators(terminus)
    config = write_config(
        pytester,
        terminus,
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
