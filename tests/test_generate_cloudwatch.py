"""cloudwatch: cfn-lint accepts the template, its alarms watch what the exporter sends,
the guide's five alarms are there, and --apply puts them (moto: call shape only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthetic.exporters import cloudwatch as exporter
from tests.support.generate_helpers import ENVIRONMENTS, Generated, exported_run, synthetic
from tests.support.moto_server import cloudwatch_client, start_moto_or_fail

FILE = "cloudwatch/alarms.yml"


def resources(result: Generated) -> dict[str, dict[str, Any]]:
    template = yaml.safe_load(result.text(FILE))
    return {name: r["Properties"] for name, r in template["Resources"].items()}


@pytest.mark.slow
def test_cfn_lint_accepts_every_environments_template(generated: dict[str, Generated]) -> None:
    files = [str(generated[e].out / FILE) for e in ENVIRONMENTS]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_alarms_watch_the_metrics_the_exporter_sends(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    sent = {
        (datum["MetricName"], tuple((d["Name"], d["Value"]) for d in datum["Dimensions"]))
        for datum in exporter.metric_data(
            exported_run(result.catalogue), names=result.catalogue.exporters.cloudwatch_names
        )
    }
    namespace = result.catalogue.exporters.cloudwatch_namespace or exporter.DEFAULT_NAMESPACE
    alarms = resources(result)
    assert len(alarms) >= len(result.catalogue.checks)
    for name, alarm in alarms.items():
        key = (alarm["MetricName"], tuple((d["Name"], d["Value"]) for d in alarm["Dimensions"]))
        assert key in sent, f"{name} watches {key}, which the exporter never sends"
        assert alarm["Namespace"] == namespace


def test_the_guides_five_alarms(generated: dict[str, Generated]) -> None:
    """The guide's table, read by hand: alarm, metric, threshold, period, action."""
    alarms = resources(generated["production"])
    pager, chat, above, below = (
        "PagerdutyOncallTopic",
        "SlackOpsTopic",
        "GreaterThanThreshold",
        "LessThanThreshold",
    )
    expected = {
        "HighErrorRate": ("LogsErrorCount", above, 10.0, 60, chat),
        "HighLatency": ("ResponseTimeP95", above, 2000.0, 300, chat),
        "QueueBacklog": ("WhmcsQueueDepth", above, 50.0, 300, pager),
        "DatabaseDown": ("HealthStatus", below, 1.0, 60, pager),
        "CacheDown": ("HealthStatus", below, 1.0, 60, pager),
    }
    for name, (metric, operator, threshold, period, topic) in expected.items():
        alarm = alarms[name]
        got = (
            alarm["MetricName"],
            alarm["ComparisonOperator"],
            alarm["Threshold"],
            alarm["Period"],
        )
        assert got == (metric, operator, threshold, period), name
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
        assert alarm["OKActions"] == [{"Ref": "EmailTeamTopic"}], name
    assert {"Name": "name", "Value": "database"} in alarms["DatabaseDown"]["Dimensions"]
    # A sustained breach: every sample of the 5 minutes above 2 s, so the minimum.
    assert alarms["HighLatency"]["Statistic"] == "Minimum"
    assert alarms["HighErrorRate"]["Statistic"] == "Maximum"


@pytest.mark.slow
def test_apply_puts_the_templates_alarms(tmp_path: Path, generated: dict[str, Generated]) -> None:
    with start_moto_or_fail() as moto:
        config = tmp_path / "synthetic.toml"
        config.write_text(
            f'checks = ["{Path(__file__).resolve().parent.parent / "checks"}"]\n'
            "[environments.sandbox]\n"
            'base_url = "http://127.0.0.1:4000"\n'
            "[environments.sandbox.exporters]\n"
            f'cloudwatch_region = "us-east-1"\ncloudwatch_endpoint_url = "{moto.url}"\n'
            "[alerts.receivers.pagerduty-oncall]\n"
            'type = "pagerduty"\nrouting_key = "k"\n'
            "[[alerts.routes]]\n"
            'receiver = "pagerduty-oncall"\nseverity = "critical"\n'
        )
        arn = "arn:aws:sns:us-east-1:123456789012:oncall"
        done = synthetic(
            "generate", "cloudwatch", "--env", "sandbox", "--config", str(config),
            "--out", str(tmp_path / "out"), "--apply", "--sns", f"pagerduty-oncall={arn}",
            cwd=tmp_path, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        template = yaml.safe_load((tmp_path / "out" / FILE).read_text())["Resources"]
        client = cloudwatch_client(moto.url)
        put = {
            alarm["AlarmName"]: alarm
            for page in client.get_paginator("describe_alarms").paginate()
            for alarm in page["MetricAlarms"]
        }
    assert f"put {len(template)} alarms" in done.stdout
    assert sorted(put) == sorted(r["Properties"]["AlarmName"] for r in template.values())
    for resource in template.values():
        want = resource["Properties"]
        got = put[want["AlarmName"]]
        for key in ("MetricName", "Namespace", "Threshold", "ComparisonOperator", "Period",
                    "Statistic", "Dimensions", "EvaluationPeriods"):  # fmt: skip
            assert got[key] == want[key], (want["AlarmName"], key)
        pages = want["AlarmActions"] == [{"Ref": "PagerdutyOncallTopic"}]
        assert got["AlarmActions"] == ([arn] if pages else [])
