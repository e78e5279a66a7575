"""Every LogQL query the Loki source can build parses with Grafana's own grammar.

``@grafana/lezer-logql`` (npm, installed by `.ci/run`) is the parser of
Grafana's Loki query editor; a query it marks with an error node would be
refused by Loki too. The queries come from every preset and the mapping
options that change their shape (fields given as labels, patterns, aliases,
levels by name, a fractional slow_ms, no error field).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from synthetic.logs.settings import PRESETS, LogsSettings
from synthetic.logs.shapes import resolve
from synthetic.logs.sources.logql import LogQL
from tests.support.node_apps import NODE_APPS_DIR, NODE_MODULES, require_node

PACKAGES = ("@grafana/lezer-logql", "@lezer/lr")
NOW_MS = 1_736_937_012_345

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "labels": {"loki": {"labels": {"level": "level", "res.statusCode": "status_code"}}},
    "patterns": {
        "requests": {"when": {"field": "msg", "pattern": "(?i)request (completed|errored)"}},
        "calls": {"when": {"field": "operation", "pattern": "^get"}, "error": "error.code"},
    },
    "dependency pattern": {"calls": {"dependency_pattern": r"(?i)calling (\w+)/api"}},
    "aliases": {
        "dependencies": {
            "whmcs": {"aliases": ["Billing Client", "WHMCS-v2"]},
            "sf": {"aliases": ['Sales"force']},
        }
    },
    "levels by name": {
        "error_level": "warn",
        "slow_ms": 1250.5,
        "selector": '{app=~"bff|portal", env!="dev"}',
    },
    "no dependencies": {"dependencies": {}},
    "odd paths": {
        "requests": {"status": "http.response.status_code", "duration": r"timing\.total_ms"},
        "correlation_fields": ["headers.x-request-id", "trace.id"],
    },
}


def queries() -> list[tuple[str, str]]:
    found = []
    for name, variant in VARIANTS.items():
        loki = {
            "url": "http://127.0.0.1:3100",
            "selector": '{service="customer-portal-bff"}',
            **variant.get("loki", {}),
        }
        if "selector" in variant:
            loki["selector"] = variant["selector"]
        table = {k: v for k, v in variant.items() if k not in ("loki", "selector")}
        settings = LogsSettings.model_validate({**table, "source": "loki", "loki": loki})
        assert settings.loki is not None
        for preset in PRESETS:
            for field in (None, "context"):
                shaped = settings
                if field is not None and preset != "nestjs-pino":
                    calls = settings.calls.model_copy(update={"dependency_field": field})
                    shaped = settings.model_copy(update={"calls": calls})
                shape = resolve(shaped, preset, detected=None)
                q = LogQL(shape, shaped, settings.loki, at_ms=NOW_MS)
                found += [(f"{name}/{preset}/{field}", query) for query in q.every_query()]
    return found


def parse_errors(texts: list[str]) -> list[list[int]]:
    require_node(PACKAGES)
    done = subprocess.run(
        ["node", str(NODE_APPS_DIR / "logql_parse.js")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=60,
        env={"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[list[int]] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_every_query_parses_with_grafanas_logql_grammar() -> None:
    built = queries()
    assert len(built) > 300
    # A grammar that cannot fail proves nothing: known-bad queries come first.
    bad = ['sum by (a (count_over_time({x="y"} [5m]))', '{x="y"} | json a=', 'rate({x="y"}[5m]']
    errors = parse_errors(bad + [query for _, query in built])
    assert all(errors[: len(bad)]), "the parser accepted a malformed query"
    refused = [
        f"{where}: error at {found[0]}: ...{query[max(0, found[0] - 60) : found[0] + 40]}..."
        for (where, query), found in zip(built, errors[len(bad) :], strict=True)
        if found
    ]
    assert refused == []
