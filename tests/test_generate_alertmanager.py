"""alertmanager: amtool accepts it, and every check's critical and warning alert reaches
the receivers synthetic's own routing picks (the checklist's "test alert routing")."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from synthetic.alerts.settings import AlertSettings, Receiver, Route
from synthetic.generate.alertmanager import UNROUTED, generate
from synthetic.generate.model import Catalogue, attributes
from tests.support.generate_helpers import ENVIRONMENTS, SECRETS, Generated

pytestmark = pytest.mark.slow
FILE = "alertmanager/alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("amtool") is None:
        pytest.fail("amtool is not installed (apt-get install prometheus-alertmanager)")
    return subprocess.run(
        ["amtool", *args], capture_output=True, text=True, timeout=30, check=False
    )


def routed(config: Path, receivers: list[str], labels: Mapping[str, str | None]) -> str:
    """'' when amtool routes ``labels`` to exactly ``receivers``, else what it said."""
    done = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        f"--verify.receivers={','.join(receivers)}",
        *(f"{name}={value}" for name, value in sorted(labels.items()) if value),
    )
    return "" if done.returncode == 0 else f"{labels}: {done.stdout.strip()} {done.stderr.strip()}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_amtool_accepts_it_and_routes_every_check_as_synthetic_does(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    config = result.out / FILE
    checked = amtool("check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    cases = []
    for spec in result.catalogue.checks:
        for severity in ("critical", "warning"):
            # The pipeline's routing is the ground truth; as alert labels, plus alertname.
            expected = result.catalogue.receivers(spec, severity) or [UNROUTED]
            labels = attributes(spec, severity, environment)
            cases.append((config, expected, {**labels, "alertname": "Synthetic"}))
    with ThreadPoolExecutor(max_workers=4) as pool:
        wrong = [w for w in pool.map(lambda case: routed(*case), cases) if w]
    assert not wrong, "\n".join(wrong[:5])
    assert len(cases) == 2 * len(result.catalogue.checks)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_guides_routing_critical_pages_warning_chats_and_no_secret_is_written(
    generated: dict[str, Generated], environment: str
) -> None:
    result = generated[environment]
    config = result.out / FILE
    text = config.read_text()
    for secret in SECRETS.values():
        assert secret not in text
    spec = next(s for s in result.catalogue.checks if s.metric == "whmcs.queue_size")
    for severity, receiver in (("critical", "pagerduty-oncall"), ("warning", "slack-ops")):
        assert routed(config, [receiver], attributes(spec, severity, environment)) == ""
    document = yaml.safe_load(text)
    receivers = {r["name"]: r for r in document["receivers"]}
    assert receivers["pagerduty-oncall"]["pagerduty_configs"][0]["routing_key_file"].endswith(
        "/pagerduty-oncall.routing_key"
    )
    assert "api_url_file" in receivers["slack-ops"]["slack_configs"][0]
    inhibit = document["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert "check" in inhibit["equal"]


def test_globs_continue_and_unroutable_receivers(tmp_path: Path) -> None:
    """Routes with globs and ``continue``, a webhook whose URL holds a secret."""
    settings = AlertSettings(
        receivers={
            "pager": Receiver(name="pager", type="pagerduty"),
            "chat": Receiver(name="chat", type="slack"),
            "hook": Receiver(name="hook", type="webhook", url="https://hooks.example/t0k3n"),
        },
        routes=(
            Route("pager", {"severity": ("critical",), "metric": ("db.*", "redis.?atency")}, True),
            Route("chat", {"component": ("queue[s]",)}),
            Route("hook", {"check": ("checks/a.py::check_[!x]*",)}),
        ),
    )
    from synthetic.redact import Masker

    catalogue = Catalogue(
        environment="production",
        source="synthetic.toml",
        checks=(),
        alerts=settings,
        masker=Masker(["t0k3n"]),
    )
    out = generate(catalogue, secrets_dir="/etc/secrets")
    text = out.artifacts[0].text
    assert "t0k3n" not in text
    assert any("hook" in note and "secret" in note for note in out.notes)
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    assert amtool("check-config", str(config)).returncode == 0
    # The pipeline's routing decides; amtool must agree on each.
    from synthetic.alerts.decide import receivers_for

    for labels in (
        {"severity": "critical", "metric": "db.size", "component": "queues"},
        {"severity": "critical", "metric": "redis.latency", "component": "cache"},
        {"severity": "critical", "metric": "redis.xlatency", "component": "queues"},
        {"severity": "warning", "metric": "db.size", "component": "queues"},
        {"severity": "warning", "check": "checks/a.py::check_one"},
        {"severity": "warning", "check": "checks/a.py::check_xone"},
        {"severity": "warning", "metric": "db.size"},
    ):
        expected = receivers_for(settings, labels) or [UNROUTED]
        assert routed(config, expected, labels) == "", labels
