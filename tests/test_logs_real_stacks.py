"""The log checks against real Node BFFs (tests/node/): every metric equals the
ground truth computed from the files the app wrote (tests/support/node_truth.py).

Each app gets the same mix: plain requests, 5xx answers, slow ones, calls to
WHMCS, Salesforce and Freebit that fail or not, a handler that throws, and
traffic carrying the monitor's own identity (its correlation id and user
agent), which must be left out. Counts and rates are exact; a p95 is within
the sketch's 1 %.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.support.catalogue_runs import CHECKS
from tests.support.logs_helpers import PORTAL_DEPENDENCIES_TOML
from tests.support.loki_standin import PORTAL_SELECTOR_TOML, loki_standin
from tests.support.node_apps import Calls, NodeApp, Orders, drive
from tests.support.node_truth import Truth, ground_truth

LOG_CHECKS = ("check_logs.py", "check_external.py", "check_application.py")
PRESETS = {"express": "pino-http", "nest": "nestjs-pino", "fastify": "fastify"}
MIX: list[Orders | Calls] = [
    Orders(24),
    Orders(3, status=500),
    Orders(1, status=503),
    Orders(2, delay_ms=2100),
    Orders(1, throws=True),
    Orders(3, status=500, own=True),
    Orders(1, delay_ms=2100, own=True),
    Calls("whmcs", 6),
    Calls("whmcs", 2, fail="1"),
    Calls("salesforce", 5),
    Calls("salesforce", 3, fail="1", own=True),
    Calls("freebit", 3, delay_ms=150),
    Calls("freebit", 1, fail="reset"),
]


def run_log_checks(
    pytester: pytest.Pytester, app: NodeApp, logs: str = "", *args: str
) -> dict[str, dict[str, Any]]:
    """The log checks over the app's files, with ``logs`` as the ``logs`` table;
    results.json's checks by metric name with labels (``x{dependency=whmcs}``)."""
    files = ", ".join(f'"{path}"' for path in app.log_files)
    config = pytester.path / "synthetic.toml"
    config.write_text(
        f"[environments.test]\nlog_files = [{files}]\n[environments.test.logs]\n{logs}\n"
        + PORTAL_DEPENDENCIES_TOML,
        encoding="utf-8",
    )
    out = pytester.path / "out"
    pytester.runpytest(
        *(str(CHECKS / name) for name in LOG_CHECKS), "--env", "test",
        "--synthetic-config", str(config), "--results-dir", str(out),
        "-p", "no:cacheprovider", *args,
    )  # fmt: skip
    document = json.loads((out / "results.json").read_text())
    (out / "results.json").unlink()
    found = {}
    for check in document["checks"]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(check["labels"].items()))
        found[check["metric"] + (f"{{{labels}}}" if labels else "")] = check
    return found


def assert_matches(results: dict[str, dict[str, Any]], truth: Truth) -> None:
    """Every log metric equal to the truth (a p95 within 1 %), or skipped without data."""
    expected = truth.metrics()
    for name, value in expected.items():
        check = results[name]
        if value is None:
            assert check["severity"] == "skipped", (name, check["reason"])
        elif "p95" in name:
            # The sketch is within 1 %, and the value is then rounded to 0.1 ms: the
            # two add up (approx's rel and abs do not: it takes the larger).
            assert abs(check["value"] - value) <= 0.01 * value + 0.05, (name, check["reason"])
        else:
            assert check["value"] == pytest.approx(value, abs=1e-9), (name, check["reason"])


@pytest.fixture(params=sorted(PRESETS))
def driven_app(request: pytest.FixtureRequest) -> tuple[str, NodeApp]:
    """Each stack's app with the mix sent once per test module."""
    stack: str = request.param
    app: NodeApp = request.getfixturevalue(f"{stack}_bff")
    if not app.log_file.exists() or app.logged_requests() < len(MIX):
        drive(app, MIX)
    return stack, app


@pytest.mark.slow
@pytest.mark.parametrize("configured", [True, False], ids=["preset", "detected"])
def test_every_log_metric_equals_the_ground_truth(
    pytester: pytest.Pytester, driven_app: tuple[str, NodeApp], configured: bool
) -> None:
    stack, app = driven_app
    logs = f'preset = "{PRESETS[stack]}"' if configured else ""
    results = run_log_checks(pytester, app, logs)
    truth = ground_truth(stack, app.log_files, int(time.time() * 1000))

    assert truth.server_errors >= 5  # the mix has 5xx answers, the app's own included
    assert truth.own_lines > 0
    assert_matches(results, truth)
    evidence = results["app.error_rate"]["evidence"]["analysis"]
    # Counted per file read: an own error line is in combined.log and error.log.
    now_ms = int(time.time() * 1000)
    own_read = sum(ground_truth(stack, [path], now_ms).own_lines for path in app.log_files)
    assert evidence["own_lines_left_out"] == own_read
    how = "configured" if configured else "detected from"
    assert evidence["shape"].startswith(f"{PRESETS[stack]} ({how}")


@pytest.mark.slow
def test_pino_http_logs_5xx_at_level_30_and_they_still_count(
    pytester: pytest.Pytester, express_bff: NodeApp
) -> None:
    """pino-http without customLogLevel: a 500 is a level-30 line; app.error_rate
    counts it by status, logs.error_count by level (so not)."""
    drive(express_bff, [Orders(4), Orders(1, status=500)])
    results = run_log_checks(pytester, express_bff, 'preset = "pino-http"')
    truth = ground_truth("express", express_bff.log_files, int(time.time() * 1000))
    assert truth.server_errors > 0
    assert results["app.error_rate"]["value"] == pytest.approx(truth.error_rate)
    assert results["logs.error_count"]["value"] == truth.error_count  # the failed calls only


@pytest.mark.slow
def test_the_monitors_own_health_probe_is_not_a_failing_dependency(
    pytester: pytest.Pytester, nest_bff: NodeApp
) -> None:
    """Salesforce down in terminus: the monitor's own /auth/health-check makes terminus
    log "Health Check has failed! ... salesforce ..." at level 50. That is neither a
    call to Salesforce nor an error of the portal's."""
    headers = {"X-Correlation-Id": "synthetic-run9-check_integration_health",
               "User-Agent": "synthetic/0.1.0"}  # fmt: skip
    httpx.put(f"{nest_bff.url}/__test/health", json={"salesforce": "down"}).raise_for_status()
    try:
        before = nest_bff.offsets()
        answer = httpx.get(f"{nest_bff.url}/auth/health-check", headers=headers)
        assert answer.status_code == 503
        logged = b"".join(p.read_bytes()[before[p] :] for p in nest_bff.log_files)
        assert b"Health Check has failed!" in logged
        assert b"salesforce" in logged
    finally:
        httpx.put(f"{nest_bff.url}/__test/health", json={"salesforce": "up"}).raise_for_status()
    drive(nest_bff, [Orders(2), Calls("salesforce", 4)])
    results = run_log_checks(pytester, nest_bff, 'preset = "nestjs-pino"')
    truth = ground_truth("nest", nest_bff.log_files, int(time.time() * 1000))
    salesforce = results["external.error_rate{dependency=salesforce}"]
    assert salesforce["value"] == pytest.approx(truth.dependencies["salesforce"].error_rate)
    assert results["logs.error_count"]["value"] == truth.error_count


@pytest.mark.slow
def test_a_field_that_maps_nothing_is_unknown_naming_it(
    pytester: pytest.Pytester, express_bff: NodeApp
) -> None:
    drive(express_bff, [Orders(3)])
    results = run_log_checks(
        pytester, express_bff, 'preset = "pino-http"\nrequests = { status = "res.status" }'
    )
    check = results["app.error_rate"]
    assert check["severity"] == "unknown"
    assert "'res.status' (logs.requests.status)" in check["reason"]
    assert "top-level keys seen:" in check["reason"]
    assert "responseTime" in check["reason"]
    assert results["logs.slow_requests"]["severity"] == "unknown"


@pytest.mark.slow
def test_the_guide_mapping_on_pino_http_lines_says_why_it_reads_nothing(
    pytester: pytest.Pytester, express_bff: NodeApp
) -> None:
    """What users hit before presets: the guide's flat fields on pino-http lines."""
    drive(express_bff, [Orders(3)])
    results = run_log_checks(pytester, express_bff, 'preset = "guide"')
    reason = results["app.error_rate"]["reason"]
    assert results["app.error_rate"]["severity"] == "unknown"
    assert "'statusCode' (logs.requests.status)" in reason
    assert "res" in reason.split("top-level keys seen:")[1]


@pytest.mark.slow
def test_every_log_metric_from_loki_equals_the_ground_truth(
    pytester: pytest.Pytester, driven_app: tuple[str, NodeApp]
) -> None:
    """The same checks with ``source = "loki"``: a Loki stand-in (tests/support/loki_standin.py)
    serves the app's combined.log (what an agent would ship) and evaluates the LogQL
    the checks send. The monitor's own lines are left out by their correlation id
    and User-Agent, which every line of these stacks' own requests carries."""
    stack, app = driven_app
    with loki_standin([app.log_file]) as loki:
        table = f'source = "loki"\npreset = "{PRESETS[stack]}"\n'
        table += f'[environments.test.logs.loki]\nurl = "{loki.url}"\n' + PORTAL_SELECTOR_TOML
        results = run_log_checks(pytester, app, table)
    truth = ground_truth(stack, app.log_files, int(time.time() * 1000))
    assert truth.own_lines > 0
    assert_matches(results, truth)
    source = results["app.error_rate"]["evidence"]["source"]
    assert source["backend"] == "loki"
    assert source["queries"] == len(loki.queries)
