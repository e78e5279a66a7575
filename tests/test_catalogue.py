"""The Customer Portal catalogue against the monitoring guide's table.

Every metric of the contract exists in checks/, and its thresholds, as the
checks declare them, give the guide's severity just below, at and just
above each limit. The data paths (Redis, PostgreSQL, the BFF) are tested
against real servers in test_check_*.py; this file pins the thresholds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synthetic.outcome import evaluate
from synthetic.results import Severity
from synthetic.spec import CheckSpec
from synthetic.thresholds import parse_threshold

REPO = Path(__file__).resolve().parent.parent
OK, WARNING, CRITICAL = Severity.OK, Severity.WARNING, Severity.CRITICAL


def above(limit: float) -> float:
    return limit + 0.001


def below(limit: float) -> float:
    return limit - 0.001


def upper(warning: float, critical: float) -> list[tuple[Any, Severity]]:
    """A metric that alerts above its limits: below, at and above each."""
    return [
        (below(warning), OK),
        (warning, OK),
        (above(warning), WARNING),
        (below(critical), WARNING),
        (critical, WARNING),
        (above(critical), CRITICAL),
    ]


def lower(warning: float, critical: float) -> list[tuple[Any, Severity]]:
    """A metric that alerts below its limits (cache hit rate)."""
    return [
        (above(warning), OK),
        (warning, OK),
        (below(warning), WARNING),
        (above(critical), WARNING),
        (critical, WARNING),
        (below(critical), CRITICAL),
    ]


STATUS = [("ok", OK), ("degraded", WARNING), ("failing", CRITICAL), ("down", CRITICAL)]
QUEUE_HEALTH = [("healthy", OK), ("degraded", WARNING), ("unhealthy", CRITICAL)]

# metric id: (unit, [(value, severity)]) — the guide's table, issue 3's contract.
CATALOGUE: dict[str, tuple[str | None, list[tuple[Any, Severity]]]] = {
    # @nestjs/terminus's overall words: "error" (an indicator down) and "shutting_down".
    "health.status": (None, [*STATUS, ("error", CRITICAL), ("shutting_down", CRITICAL)]),
    "health.check": (None, [("ok", OK), ("fail", CRITICAL), ("degraded", CRITICAL)]),
    "endpoint.status": (
        None,
        [("ok", OK), ("HTTP 503", CRITICAL), ("HTTP 200, not JSON", CRITICAL)],
    ),
    "integration.health": (None, STATUS),
    "app.response_time_p95": ("ms", upper(2000, 5000)),
    "app.active_connections": ("%", upper(80, 95)),
    "whmcs.queue_size": ("requests", upper(10, 50)),
    "whmcs.failed_requests": ("requests", upper(5, 20)),
    "whmcs.health": (None, QUEUE_HEALTH),
    "salesforce.health": (None, QUEUE_HEALTH),
    "salesforce.queue_size": ("requests", upper(10, 50)),
    "salesforce.failed_requests": ("requests", upper(5, 20)),
    "salesforce.daily_api_usage": ("%", upper(80, 95)),
    "bullmq.waiting": ("jobs", upper(10, 50)),
    "bullmq.failed": ("jobs", upper(5, 20)),
    "db.connection_pool_usage": ("%", upper(80, 95)),
    "db.query_duration": ("ms", upper(500, 2000)),
    "db.statement_mean_time": ("ms", upper(500, 2000)),
    "db.size": ("%", upper(80, 90)),
    "db.dead_tuples": ("%", upper(10, 25)),
    "redis.memory": ("%", upper(80, 95)),
    "cache.hit_rate": ("%", lower(80, 60)),
    "redis.latency": ("ms", upper(10, 50)),
    "redis.evictions": ("/min", [(0, OK), (0.01, WARNING), (100, WARNING), (100.01, CRITICAL)]),
    "catalog.cache": (None, [("ok", OK), ("degraded", OK), ("failing", CRITICAL)]),
    # From the BFF's Pino logs (issue 6).
    "app.error_rate": ("%", upper(1, 5)),
    "logs.error_count": ("lines", upper(10, 50)),
    "logs.response_time_p95": ("ms", upper(2000, 5000)),
    "logs.slow_requests": ("requests", upper(10, 100)),
    "external.error_rate": ("%", upper(1, 5)),
}
# Freebit has its own limits in the guide: one table per dependency.
EXTERNAL_P95 = {"salesforce": upper(2000, 5000), "whmcs": upper(2000, 5000),
                "freebit": upper(3000, 10000)}  # fmt: skip

RUNBOOKS = {"incident-response", "database-operations", "queue-management", "external-dependencies"}


def spec_from_listing(entry: dict[str, Any]) -> CheckSpec:
    """A `CheckSpec` rebuilt from one entry of ``synthetic list --json``."""
    unit = entry["unit"]
    return CheckSpec(
        node_id=entry["id"],
        metric=entry["metric"],
        unit=unit,
        component=entry["component"],
        runbook=entry["runbook"],
        priority=entry["priority"],
        warning=parse_threshold(entry["warning"], unit=unit) if entry["warning"] else None,
        critical=parse_threshold(entry["critical"], unit=unit) if entry["critical"] else None,
        labels=entry["labels"],
        description=entry["description"],
    )


@pytest.fixture(scope="module")
def catalogue() -> dict[str, list[CheckSpec]]:
    """The catalogue as a user sees it: ``synthetic list --json`` in the repository."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    done = subprocess.run(
        [sys.executable, "-m", "synthetic", "list", "--json"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    by_metric: dict[str, list[CheckSpec]] = {}
    for entry in json.loads(done.stdout):
        by_metric.setdefault(entry["metric"], []).append(spec_from_listing(entry))
    return by_metric


def test_every_metric_of_the_guide_has_a_check(catalogue: dict[str, list[CheckSpec]]) -> None:
    assert set(CATALOGUE) <= set(catalogue)


@pytest.mark.parametrize("metric", sorted(CATALOGUE))
def test_thresholds_follow_the_guide(catalogue: dict[str, list[CheckSpec]], metric: str) -> None:
    unit, table = CATALOGUE[metric]
    for spec in catalogue[metric]:
        assert spec.unit == unit, spec.node_id
        for value, expected in table:
            outcome = evaluate(spec, value)
            assert outcome.severity is expected, f"{spec.node_id}: {value!r} -> {outcome.reason}"


def test_external_response_time_per_dependency(catalogue: dict[str, list[CheckSpec]]) -> None:
    specs = catalogue["external.response_time_p95"]
    assert sorted(spec.labels["dependency"] for spec in specs) == sorted(EXTERNAL_P95)
    for spec in specs:
        assert spec.unit == "ms"
        for value, expected in EXTERNAL_P95[spec.labels["dependency"]]:
            assert evaluate(spec, value).severity is expected, f"{spec.node_id}: {value!r}"


def test_checks_carry_runbook_priority_and_component(
    catalogue: dict[str, list[CheckSpec]],
) -> None:
    for specs in catalogue.values():
        for spec in specs:
            assert spec.runbook is not None, spec.node_id
            assert spec.runbook.rsplit("/", 1)[-1] in RUNBOOKS, spec.node_id
            assert spec.priority in {"P1", "P2", "P3", "P4"}, spec.node_id
            assert spec.component, spec.node_id
            assert spec.description, spec.node_id


def test_endpoint_checks_cover_the_six_health_endpoints(
    catalogue: dict[str, list[CheckSpec]],
) -> None:
    paths = {spec.labels["path"] for spec in catalogue["endpoint.status"]}
    assert paths == {
        "/health",
        "/health/queues",
        "/health/queues/whmcs",
        "/health/queues/salesforce",
        "/health/catalog/cache",
        "/auth/health-check",
    }
    integrations = {spec.labels["integration"] for spec in catalogue["integration.health"]}
    assert integrations == {"database", "whmcs", "salesforce"}


@pytest.mark.slow
def test_one_request_per_endpoint_per_run(pytester: pytest.Pytester) -> None:
    from synthetic.sandbox import Sandbox

    with Sandbox("healthy") as sandbox:
        config = pytester.path / "synthetic.toml"
        config.write_text(
            f'[environments.test]\nbase_url = "{sandbox.url}"\n'
            f'metrics_url = "{sandbox.url}/metrics"\n[environments.test.params]\n'
            'connection_capacity = 200\np95_sample_size = 4\np95_paths = ["/health"]\n',
            encoding="utf-8",
        )
        result = pytester.runpytest(
            str(REPO / "checks"), "--env", "test", "--synthetic-config", str(config),
            "--results-dir", str(pytester.path / "out"), "-p", "no:cacheprovider",
        )  # fmt: skip
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
        snapshot_requests = [
            r.path
            for r in sandbox.requests
            if not r.headers["X-Correlation-Id"].endswith("check_response_time_p95")
        ]
    # Every endpoint once, however many checks read it (the p95 burst aside).
    assert sorted(snapshot_requests) == sorted(
        [
            "/health",
            "/health/queues",
            "/health/queues/whmcs",
            "/health/queues/salesforce",
            "/health/catalog/cache",
            "/auth/health-check",
            "/metrics",
        ]
    )


def test_dependencies_and_their_thresholds_are_configuration(tmp_path: Path) -> None:
    """A fourth dependency needs no code; one dependency's thresholds come from its
    entry in the logs table, or from an override for that label only."""
    config = tmp_path / "synthetic.toml"
    config.write_text(
        f'checks = ["{REPO / "checks"}"]\n'
        "[environments.test.logs.dependencies]\n"
        "whmcs = {}\n"
        'stripe = { response_time_p95 = { warning = "> 1s", critical = "> 3s" } }\n'
        '[environments.test.thresholds."external.response_time_p95{dependency=\\"whmcs\\"}"]\n'
        'warning = "> 1500ms"\n'
        '[environments.test.thresholds."external.error_rate"]\n'
        'critical = "> 10%"\n',
        encoding="utf-8",
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    done = subprocess.run(
        [sys.executable, "-m", "synthetic", "list", "--json", "--env", "test",
         "--config", str(config)],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no check measures" not in done.stderr
    found = {
        (entry["metric"], entry["labels"].get("dependency")): (entry["warning"], entry["critical"])
        for entry in json.loads(done.stdout)
        if entry["metric"].startswith("external.")
    }
    assert found == {
        ("external.response_time_p95", "whmcs"): ("> 1500ms", "> 5s"),
        ("external.response_time_p95", "stripe"): ("> 1s", "> 3s"),
        ("external.error_rate", None): ("> 1%", "> 10%"),
        ("external.error_rate", "whmcs"): ("> 1%", "> 10%"),
        ("external.error_rate", "stripe"): ("> 1%", "> 10%"),
    }


def test_the_catalogues_settings_are_documented() -> None:
    """Every key of the portal's `params` table (checks/settings.py) has its row in
    docs/catalogue.md, with its default as the model has it."""
    import json

    from checks.settings import PortalSettings

    page = (REPO / "docs" / "catalogue.md").read_text(encoding="utf-8")
    for name, field in PortalSettings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else f"`{json.dumps(default)}`"
        assert f"| `{name}` | {shown} |" in page, name
