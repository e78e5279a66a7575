"""datadog: every monitor is a Monitor of datadog-api-client with nothing it could not
parse, queries the gauges the DogStatsD exporter sends, and the guide's three are there."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.model_utils import ModelNormal
from datadog_api_client.v1.model.monitor import Monitor

from synthetic.exporters import dogstatsd as exporter
from tests.support.generate_helpers import ENVIRONMENTS, Generated, exported_run

FILE = "datadog/monitors.json"
_QUERY = re.compile(r"^(min|max)\(last_(\d+)m\):(min|max):([\w.]+)\{([^}]*)\} (>=|<=|>|<) (\S+)$")


def unparsed(model: Any, data: Any, where: str = "monitor") -> list[str]:
    """What the model did not take: unknown keys, enum values it kept unparsed."""
    problems = []
    if getattr(model, "_unparsed", False):
        problems.append(f"{where}: unparsed")
    if isinstance(model, ModelNormal) and isinstance(data, dict):
        known = {json_name: name for name, json_name in model.attribute_map.items()}
        for key, value in data.items():
            if key not in known:
                problems.append(f"{where}.{key}: not a field of {type(model).__name__}")
            else:
                problems += unparsed(getattr(model, known[key]), value, f"{where}.{key}")
    return problems


def monitors(result: Generated) -> list[dict[str, Any]]:
    document = json.loads(result.text(FILE))
    assert document["generated_by"] == result.catalogue.header
    found: list[dict[str, Any]] = document["monitors"]
    return found


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_monitor_deserialises_with_nothing_left_over(
    generated: dict[str, Generated], environment: str
) -> None:
    client = ApiClient(Configuration())
    found = monitors(generated[environment])
    assert len(found) == len(generated[environment].catalogue.checks)
    for body in found:
        model = client.deserialize(json.dumps(body), (Monitor,), True)
        assert unparsed(model, body) == [], body["name"]


def test_the_walk_catches_what_deserialising_lets_through() -> None:
    client = ApiClient(Configuration())
    body = {"type": "query alert", "query": "max(last_1m):max:a{b:c} > 1", "options": {}}
    for bad in ({**body, "type": "querry alert"}, {**body, "option": {}}):
        model = client.deserialize(json.dumps(bad), (Monitor,), True)
        assert unparsed(model, bad)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_monitor_queries_exactly_its_checks_gauge(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    naming = exporter.Naming.of(result.catalogue.exporters)
    sent = exporter.gauges(exported_run(result.catalogue), naming=naming)
    for body in monitors(result):
        match = _QUERY.match(body["query"])
        assert match, body["query"]
        name, scope = match[4], match[5].split(",")
        wanted = {tag for tag in scope if not tag.startswith("!")}
        excluded = {tag[1:].removesuffix(":*") for tag in scope if tag.startswith("!")}
        selected = [
            tags
            for gauge, _, tags in sent
            if gauge == name
            and wanted <= set(tags)
            and not any(tag.split(":", 1)[0] in excluded for tag in tags)
        ]
        assert len(selected) == 1, (body["query"], selected)
        assert float(match[7]) == body["options"]["thresholds"]["critical"]


def test_the_guides_three_monitors(generated: dict[str, Generated]) -> None:
    """The guide: queue depth > 50 for 5 minutes, error rate > 5 %, health != ok (2 min)."""
    by_name = {m["name"]: m for m in monitors(generated["production"])}
    queue = by_name["[production] Queue Depth"]
    assert queue["query"] == (
        "min(last_5m):min:portal.whmcs.queue_depth{environment:production} > 50"
    )
    assert queue["options"]["thresholds"] == {"critical": 50, "warning": 10}
    assert "{{#is_alert}}@pagerduty-oncall{{/is_alert}}" in queue["message"]
    assert "{{#is_warning}}@slack-ops{{/is_warning}}" in queue["message"]
    errors = by_name["[production] Error Rate"]
    assert errors["query"].endswith("portal.app.error_rate{environment:production} > 5")
    health = by_name["[production] Health Check"]
    assert health["query"].startswith("min(last_2m):")
    assert "metric:health.status" in health["query"]


def test_sibling_checks_of_one_metric_are_told_apart(generated: dict[str, Generated]) -> None:
    queries = [m["query"] for m in monitors(generated["sandbox"])]
    overall = [
        q
        for q in queries
        if ":portal.external.error_rate{" in q
        and "dependency:" not in q.replace("!dependency:*", "")
    ]
    assert overall == [
        "max(last_1m):max:portal.external.error_rate{environment:sandbox,!dependency:*} > 5"
    ]
