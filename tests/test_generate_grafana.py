"""grafana: the dashboards survive a round trip through the SDK's typed models, every
check is on one, every query names a metric the exporter writes, and the colours are
the checks' thresholds."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from synthetic.generate import grafana  # first: its import silences the SDK's own warning
from synthetic.generate.grafana import GREEN, RED, YELLOW
from synthetic.spec import CheckSpec
from tests.support.generate_helpers import ENVIRONMENTS, Generated

from grafana_foundation_sdk.cog.encoder import JSONEncoder  # isort: skip
from grafana_foundation_sdk.cog.plugins import register_default_plugins  # isort: skip
from grafana_foundation_sdk.models import loki, prometheus  # isort: skip
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel  # isort: skip

NAMES = ("overview", "queues", "database", "checks")
_CHECK = re.compile(r'check="((?:[^"\\]|\\.)*)"')


def boards(result: Generated) -> dict[str, dict[str, Any]]:
    return {name: json.loads(result.text(f"grafana/{name}.json")) for name in NAMES}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_dashboards_round_trip_through_the_sdks_models(
    generated: dict[str, Generated], environment: str
) -> None:
    register_default_plugins()
    for name, board in boards(generated[environment]).items():
        model = Dashboard.from_json(board)
        assert json.loads(JSONEncoder(sort_keys=True).encode(model)) == board, name
        for panel in model.panels or []:
            if not isinstance(panel, Panel):
                continue
            kind = panel.datasource.type_val if panel.datasource else None
            typed = {"prometheus": prometheus.Dataquery, "loki": loki.Dataquery}.get(kind or "")
            for target in panel.targets or []:
                if typed is not None:
                    assert isinstance(target, typed), (name, panel.title)
        assert board["description"] == generated[environment].catalogue.header


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_check_is_on_a_dashboard_and_queries_name_exported_metrics(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    shown: set[str] = set()
    for board in boards(result).values():
        for panel in panels(board):
            if panel["datasource"]["type"] != "prometheus":
                continue
            for target in panel["targets"]:
                metric = target["expr"].split("{", 1)[0]
                assert metric in ("synthetic_check_value", "synthetic_check_severity")
                assert f'environment="{environment}"' in target["expr"]
                shown.update(_CHECK.findall(target["expr"]))
    assert shown == {spec.node_id for spec in result.catalogue.checks}


def test_the_guides_panels(generated: dict[str, Generated]) -> None:
    titles = {
        name: [p["title"] for p in panels(b)] for name, b in boards(generated["staging"]).items()
    }
    assert titles["overview"][:5] == [
        "System Health", "Request Rate", "Error Rate", "Error Log Lines", "Response Time (p95)"
    ]  # fmt: skip
    assert titles["queues"] == ["Queue Depths", "Failed Jobs", "Salesforce API Usage"]
    assert titles["database"] == ["Connection Pool", "Query Performance"]
    variables = {v["name"] for v in boards(generated["staging"])["overview"]["templating"]["list"]}
    assert {"prometheus", "loki", "log_stream"} <= variables
    database = panels(boards(generated["staging"])["database"])
    assert database[1]["datasource"]["type"] == "grafana-postgresql-datasource"
    assert "pg_stat_statements" in database[1]["targets"][0]["rawSql"]


def _colour(steps: list[dict[str, Any]], value: float) -> str:
    """The colour Grafana gives ``value``: the last step at or below it."""
    colour = steps[0]["color"]
    for step in steps[1:]:
        if value >= step["value"]:
            colour = step["color"]
    return str(colour)


def _expected(spec: CheckSpec, value: float) -> str:
    if spec.critical is not None and spec.critical.breached(value):
        return RED
    if spec.warning is not None and spec.warning.breached(value):
        return YELLOW
    return GREEN


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_panel_colours_are_the_checks_thresholds(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    specs = {spec.node_id: spec for spec in result.catalogue.checks}
    tried = 0
    for board in boards(result).values():
        for panel in panels(board):
            if panel["datasource"]["type"] != "prometheus":
                continue
            overrides = {
                o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
                for o in panel["fieldConfig"]["overrides"]
            }
            for target in panel["targets"]:
                spec = specs[_CHECK.findall(target["expr"])[0]]
                if not grafana.shows_value(spec):
                    assert panel["fieldConfig"]["defaults"]["mappings"], panel["title"]
                    continue
                steps = overrides.get(target["refId"], {}).get(
                    "thresholds", panel["fieldConfig"]["defaults"]["thresholds"]
                )["steps"]
                bounds = sorted(s["value"] for s in steps[1:])
                points = [-1e9, 1e9] + [b + d for b in bounds for d in (-0.5, 0.5)]
                for value in points:  # away from the bounds, where >= and > agree
                    assert _colour(steps, value) == _expected(spec, value), (spec.node_id, value)
                    tried += 1
    assert tried > 100


def test_the_p95_and_hit_rate_colours_by_hand(generated: dict[str, Generated]) -> None:
    """The guide: p95 warning > 2s, critical > 5s (ms); hit rate warning < 80 %, critical < 60 %."""
    by_title = {p["title"]: p for b in boards(generated["production"]).values() for p in panels(b)}
    p95 = by_title["Response Time (p95)"]["fieldConfig"]["defaults"]
    assert p95["unit"] == "ms"
    assert p95["thresholds"]["steps"] == [
        {"color": "green", "value": None},
        {"color": "yellow", "value": 2000},
        {"color": "red", "value": 5000},
    ]
    hits = by_title["cache.hit_rate"]["fieldConfig"]["defaults"]
    assert hits["unit"] == "percent"
    assert hits["thresholds"]["steps"] == [
        {"color": "red", "value": None},
        {"color": "yellow", "value": 60},
        {"color": "green", "value": 80},
    ]
    # Freebit (> 3s, > 10s) comes first by id; whmcs and salesforce (> 2s, > 5s) override it.
    external = by_title["external.response_time_p95"]["fieldConfig"]
    assert [s["value"] for s in external["defaults"]["thresholds"]["steps"]] == [None, 3000, 10000]
    overridden = [o["properties"][0]["value"]["steps"] for o in external["overrides"]]
    assert [[s["value"] for s in steps] for steps in overridden] == [[None, 2000, 5000]] * 2
