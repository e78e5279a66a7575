"""What people and Prometheus see of `synthetic serve`: a real Prometheus scraping
``/metrics``, and the status page in headless Chromium across the sandbox's
scenarios (a wide and a phone-width screenshot, the severities read from the DOM)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthetic.sandbox import Sandbox
from tests.support.chromium import CHROMIUM_FLAGS, chromium, png_pixels
from tests.support.prometheus_server import start_prometheus_or_fail
from tests.support.serve_helpers import Serving, repo_config, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox("whmcs-backlog") as running:
        yield running


def test_prometheus_scrapes_each_checks_value(tmp_path: Path, sandbox: Sandbox) -> None:
    env = {"SYNTHETIC_SANDBOX_URL": sandbox.url}
    # One round only (--every 1h): what Prometheus scrapes is what /api/results says.
    with serving(tmp_path, *repo_config(), "--every", "1h", "--alerts=off", env=env) as serve:
        serve.wait_rounds(1)
        results = serve.get("/api/results").json()
        target = serve.url.removeprefix("http://")
        with start_prometheus_or_fail(tmp_path, targets=[target]) as prometheus:
            prometheus.wait_for("synthetic_rounds_total", 1.0)
            scraped = {
                series["metric"]["check"]: float(series["value"][1])
                for series in prometheus.query('synthetic_check_value{environment="sandbox"}')
            }
            severities = {
                series["metric"]["check"]: float(series["value"][1])
                for series in prometheus.query("synthetic_check_severity")
            }
            worst = prometheus.query("synthetic_run_worst_severity")
    numeric = {
        c["id"]: float(c["value"])
        for c in results["checks"]
        if isinstance(c["value"], int | float) and not isinstance(c["value"], bool)
    }
    assert numeric, "the sandbox gives numbers"
    assert scraped == pytest.approx(numeric)
    codes = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
    measured = {c["id"]: codes[c["severity"]] for c in results["checks"] if c["severity"] in codes}
    assert severities == measured
    assert float(worst[0]["value"][1]) == codes[results["worst"]]


def dom_and_screenshot(serve: Serving, tmp_path: Path, name: str, width: int) -> str:
    browser = chromium()
    picture = tmp_path / f"{name}.png"
    # No virtual time: it would run the page's periodic reload over and over.
    flags = [f for f in CHROMIUM_FLAGS if not f.startswith(("--window-size", "--virtual-time"))]
    common = [browser, *flags, f"--window-size={width},1200", f"--user-data-dir={tmp_path / 'c'}"]
    shot = subprocess.run(
        [*common, f"--screenshot={picture}", serve.url + "/"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.returncode == 0, shot.stderr[-2000:]
    seen_width, height, pixels = png_pixels(picture)
    assert (seen_width, height) == (width, 1200)
    assert len(set(pixels)) > 20, f"the {name} screenshot is blank"
    dom = subprocess.run(
        [*common, "--dump-dom", serve.url + "/"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


# What each scenario can show (the catalogue decides: in `degraded` the cache health
# entry "fail" is critical, so the portal may be critical rather than only degraded).
SCENARIOS = {
    "healthy": {"ok"},
    "degraded": {"warning", "critical"},
    "whmcs-backlog": {"critical"},
    "down": {"down"},
}


def expected_state(document: dict[str, Any]) -> str:
    """The README's rule: down when a check could not reach the BFF, else the worst."""
    checks = document["checks"]
    if any(c["severity"] == "critical" and c["unreachable"] == "bff" for c in checks):
        return "down"
    return str(document["worst"])


def test_the_page_in_a_browser_across_scenarios(tmp_path: Path, sandbox: Sandbox) -> None:
    env = {"SYNTHETIC_SANDBOX_URL": sandbox.url}
    shots = tmp_path / "shots"
    shots.mkdir()
    with serving(tmp_path, *repo_config(), "--every", "1s", "--alerts=dry-run", env=env) as serve:
        for scenario, states in SCENARIOS.items():
            sandbox.set_scenario(scenario)
            serve.wait_rounds(serve.rounds() + 2)  # a whole round after the switch
            for _ in range(3):
                before = serve.get("/api/results").json()
                dom = dom_and_screenshot(serve, shots, scenario, 1280)
                after = serve.get("/api/results").json()
                if before["run_id"] == after["run_id"] or _same_severities(before, after):
                    break
            state = expected_state(after)
            assert state in states, (scenario, state)
            assert re.search(rf'<body data-state="{state}"', dom), scenario
            shown = dict(re.findall(r'data-check="([^"]+)" data-severity="(\w+)"', dom))
            assert shown == {c["id"]: c["severity"] for c in after["checks"]}, scenario
            for severity in {c["severity"] for c in after["checks"]}:
                assert f">{severity.upper()}</span>" in dom, (scenario, severity)
        phone = dom_and_screenshot(serve, shots, "down-phone", 390)
        assert '<body data-state="down"' in phone


def _same_severities(before: dict[str, object], after: dict[str, object]) -> bool:
    def severities(document: dict[str, object]) -> dict[str, str]:
        checks = document["checks"]
        assert isinstance(checks, list)
        return {c["id"]: c["severity"] for c in checks}

    return severities(before) == severities(after)
