"""prometheus-rules and prometheus-scrape: promtool accepts them, the generated unit tests
pass and fail when a rule is wrong, and the rules read what the exporter writes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from synthetic.config import ExportersModel
from synthetic.exporters import prometheus as exporter
from synthetic.generate.model import Catalogue
from synthetic.generate.prometheus_scrape import generate as scrape
from tests.support.generate_helpers import ENVIRONMENTS, SECRETS, Generated, exported_run

pytestmark = pytest.mark.slow
_SELECTOR = re.compile(r"(synthetic_[a-z_]+)\{([^}]*)\}")
ALERT = "SyntheticAppResponseTimeP95"
_MATCHER = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed (apt-get install prometheus); CI installs it")
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def exported_series(catalogue: Catalogue) -> list[tuple[str, dict[str, str]]]:
    """(name, labels) of every sample the exporter writes for a run of the catalogue,
    empty labels dropped as Prometheus drops them."""
    text = generate_latest(exporter.registry(exported_run(catalogue))).decode()
    return [
        (sample.name, {k: v for k, v in sample.labels.items() if v != ""})
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(
    generated: dict[str, Generated], environment: str
) -> None:
    folder = generated[environment].out / "prometheus"
    checked = promtool("check", "rules", "rules.yml", cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "rules.test.yml", cwd=folder)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    config = promtool("check", "config", "prometheus.yml", cwd=folder)
    assert config.returncode == 0, config.stdout + config.stderr


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        (" > 5000 or", " >= 5000 or"),  # one comparison off at the bound
        ("    for: 5m\n", "    for: 4m\n"),  # a sustain one step short
    ],
    ids=["operator", "for"],
)
def test_the_unit_tests_fail_when_a_rule_is_wrong(
    generated: dict[str, Generated], tmp_path: Path, wrong: str, right: str
) -> None:
    source = generated["staging"].out / "prometheus"
    rules = (source / "rules.yml").read_text()
    assert wrong.strip() in rules
    (tmp_path / "rules.yml").write_text(rules.replace(wrong, right, 1))
    shutil.copy(source / "rules.test.yml", tmp_path)
    tested = promtool("test", "rules", "rules.test.yml", cwd=tmp_path)
    assert tested.returncode == 1, tested.stdout
    assert "FAILED" in tested.stdout + tested.stderr


def test_the_guides_p95_rule_fires_past_five_seconds_after_five_minutes(
    generated: dict[str, Generated], tmp_path: Path
) -> None:
    """The guide: response time p95 warning > 2s, critical > 5s; the check sustains 5m.
    The series and the expectations are written here, not generated."""
    shutil.copy(generated["production"].out / "prometheus" / "rules.yml", tmp_path)
    check = "checks/check_application.py::check_response_time_p95"
    labels = f'check="{check}",environment="production",metric="app.response_time_p95"'
    alert_labels = {
        "check": check,
        "environment": "production",
        "metric": "app.response_time_p95",
        "component": "bff",
        "priority": "P3",
    }
    cases = []
    for value, severities in ((5001, ["critical", "warning"]), (5000, ["warning"]), (2000, [])):
        fired: list[dict[str, Any]] = [
            {"exp_labels": {**alert_labels, "severity": s}, "exp_annotations": None}
            for s in severities
        ]
        cases.append((value, fired))
    rules = yaml.safe_load((tmp_path / "rules.yml").read_text())
    annotations = {
        rule["labels"]["severity"]: rule["annotations"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule["labels"].get("check") == check
    }
    tests = []
    for value, fired in cases:
        for alert in fired:
            alert["exp_annotations"] = annotations[alert["exp_labels"]["severity"]]
        tests.append(
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"synthetic_check_value{{{labels}}}", "values": f"{value}x10"}
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": ALERT, "exp_alerts": []},
                    {"eval_time": "5m", "alertname": ALERT, "exp_alerts": fired},
                ],
            }
        )  # fmt: skip
    (tmp_path / "guide.test.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "tests": tests})
    )
    tested = promtool("test", "rules", "guide.test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rules_and_unit_tests_name_the_series_the_exporter_writes(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    series = exported_series(result.catalogue)
    rules = yaml.safe_load(result.text("prometheus/rules.yml"))
    selectors = [
        (name, dict(_MATCHER.findall(matchers)))
        for group in rules["groups"]
        for rule in group["rules"]
        for name, matchers in _SELECTOR.findall(rule["expr"])
    ]
    assert selectors
    for name, matchers in selectors:
        matching = [
            labels for n, labels in series if n == name and matchers.items() <= labels.items()
        ]
        assert matching, f"{name}{matchers} selects nothing the exporter writes"
        if "check" in matchers:
            assert len(matching) == 1
    tests = yaml.safe_load(result.text("prometheus/rules.test.yml"))
    written = {(n, tuple(sorted(labels.items()))) for n, labels in series}
    for group in tests["tests"]:
        for entry in group["input_series"]:
            parsed = _SELECTOR.fullmatch(entry["series"])
            assert parsed is not None, entry["series"]
            if f'environment="{environment}"' not in parsed[2]:
                continue  # the dead man's test of a run that never arrived
            key = (parsed[1], tuple(sorted(_MATCHER.findall(parsed[2]))))
            assert key in written, entry["series"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_check_has_rules_and_the_runs_have_a_dead_mans_switch(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    rules = yaml.safe_load(result.text("prometheus/rules.yml"))
    by_check: dict[str, set[str]] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "check" in rule["labels"]:
                by_check.setdefault(rule["labels"]["check"], set()).add(rule["labels"]["severity"])
    for spec in result.catalogue.checks:
        wanted = {"warning"} | ({"critical"} if spec.critical is not None else set())
        assert wanted <= by_check[spec.node_id], spec.node_id
    dead = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "SyntheticRunsStopped"]
    assert len(dead) == 1
    assert "synthetic_run_timestamp_seconds" in dead[0]["expr"]
    assert " > 600 " in dead[0]["expr"]
    assert "absent(" in dead[0]["expr"]


def test_the_scrape_config_reads_secrets_from_files(tmp_path: Path) -> None:
    catalogue = Catalogue(
        environment="production",
        source="synthetic.toml",
        checks=(),
        exporters=ExportersModel(
            pushgateway_url="https://monitor:pg-s3cret@push.example.com:9091/gw",
            prometheus_textfile="/var/lib/node_exporter/textfile/synthetic.prom",
        ),
        metrics_url="https://bff.example.com/metrics",
        headers={"Authorization": f"Bearer {SECRETS['PRODUCTION_MONITOR_TOKEN']}"},
    )
    out = scrape(
        catalogue,
        alertmanager="am.example.com:9093",
        node_exporter="node.example.com:9100",
        secrets_dir=str(tmp_path),
    )
    text = out.artifacts[0].text
    assert "pg-s3cret" not in text
    assert SECRETS["PRODUCTION_MONITOR_TOKEN"] not in text
    config = yaml.safe_load(text)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    push = jobs["synthetic-pushgateway"]
    assert push["honor_labels"] is True
    assert push["static_configs"] == [{"targets": ["push.example.com:9091"]}]
    assert (push["scheme"], push["metrics_path"]) == ("https", "/gw/metrics")
    assert push["basic_auth"] == {
        "username": "monitor",
        "password_file": f"{tmp_path}/pushgateway.password",
    }
    assert jobs["synthetic-textfile"]["static_configs"] == [{"targets": ["node.example.com:9100"]}]
    # No [generate] scrape_job: the framework's "bff" (the portal's config says portal-bff).
    assert jobs["bff"]["authorization"]["credentials_file"] == f"{tmp_path}/bff.credentials"
    assert config["global"]["scrape_interval"] == "30s"
    (tmp_path / "prometheus.yml").write_text(text)
    (tmp_path / "rules.yml").write_text("groups: []\n")  # what prometheus-rules writes beside it
    for secret in ("pushgateway.password", "bff.credentials"):
        (tmp_path / secret).write_text("x")  # promtool checks the files are there
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
