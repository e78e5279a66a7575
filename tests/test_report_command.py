"""``synthetic report`` end to end: a team's project (config, checks, a history
that ends now, an alert store with a standing incident and a dead letter),
the command run as a user runs it, the html opened in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthetic.alerts.store import FileAlertStore, NewEntry, empty_document
from synthetic.history import open_history
from synthetic.spec import CheckSpec
from tests.support import report_histories as h
from tests.support.chromium import CHROMIUM_FLAGS, chromium, png_pixels
from tests.support.cli_runs import REPO, synthetic_cmd
from tests.support.link_servers import serve
from tests.support.report_histories import RECEIVERS

pytestmark = pytest.mark.slow  # the command in a process, a browser

RUNBOOKS = {h.NOISY: "errors", h.TIGHT: "latency", h.OUTAGE: "errors", h.LOOSE: "missing"}


def module_of(specs: list[CheckSpec]) -> str:
    lines = ["import pytest", ""]
    for spec in specs:
        metric = f'"{spec.metric}", component="{spec.component}", priority="{spec.priority}"'
        if spec.unit:
            metric += f', unit="{spec.unit}"'
        if spec.node_id in RUNBOOKS:
            metric += f', runbook="{RUNBOOKS[spec.node_id]}"'
        lines.append(f"@pytest.mark.metric({metric})")
        for level in ("warning", "critical"):
            threshold = getattr(spec, level)
            if threshold is not None:
                lines.append(f"@pytest.mark.{level}({threshold.text!r})")
        lines += [f"def {spec.node_id.split('::')[1]}():", "    return 1", "", ""]
    return "\n".join(lines)


@pytest.fixture
def links() -> Iterator[str]:
    server, _ = serve({"/runbooks/errors": (200, {}, 0.0), "/runbooks/latency": (200, {}, 0.0)})
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/runbooks"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def team(tmp_path: Path, links: str) -> Path:
    project = tmp_path / "team"
    (project / "checks").mkdir(parents=True)
    by_file: dict[str, list[CheckSpec]] = defaultdict(list)
    for spec in h.SPECS.values():
        by_file[spec.node_id.split("::")[0]].append(spec)
    for path, specs in by_file.items():
        (project / path).write_text(module_of(specs))
    (project / "synthetic.toml").write_text(
        'default_environment = "production"\nhistory = "history.db"\n'
        f'[runbooks]\nbase_url = "{links}"\n'
        '[environments.production]\nbase_url = "http://127.0.0.1:9"\n' + RECEIVERS
    )
    store = open_history(str(project / "history.db"), results_dir=project)
    h.write_history(store, h.truth(), shift=time.time() - h.at(h.ROUNDS - 1) - 60)
    store.close()
    alerts = FileAlertStore(project / "synthetic-results" / "alerts-production.json")
    standing = {
        "dedup_key": "synthetic/production/health.status",
        "active": True,
        "severity": "critical",
        "opened_at": time.time() - 600,
        "told": {"pagerduty-oncall": {"severity": "critical", "at": time.time() - 590}},
    }

    def change(document: dict) -> tuple[dict, list[NewEntry]]:  # type: ignore[type-arg]
        document = {**empty_document(), "incidents": {"health.status": standing}}
        return document, [NewEntry("slack-ops", {"dedup_key": "x", "kind": "trigger"})]

    _, entries = alerts.update(change)
    alerts.failed(entries[0].id, owner="t", error="HTTP 404", permanent=True, now=time.time())
    return project


def report(team: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return synthetic_cmd("report", *args, "--config", str(team / "synthetic.toml"), cwd=team)


def test_fatigue_from_the_command_reads_the_history_and_the_alert_store(team: Path) -> None:
    done = report(team, "fatigue", "--format", "json", "--since", "2d")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["coverage"]["rounds"] == h.ROUNDS
    noisy = next(c for c in data["checks"] if c["check"] == h.NOISY)
    assert noisy["incidents"] == 14
    assert noisy["suggestions"][0].startswith("sustain 2m would have prevented 12 of 14 alerts")
    slack = next(r for r in data["receivers"] if r["receiver"] == "slack-ops")
    assert slack["undeliverable"] == 1
    text = report(team, "fatigue", "--since", "2d").stdout
    assert "- health.status: critical since" in text
    assert "told pagerduty-oncall at" in text


def test_html_reports_in_a_browser(team: Path, tmp_path: Path) -> None:
    browser = chromium()
    for kind in ("fatigue", "thresholds", "uptime"):
        out = tmp_path / f"{kind}.html"
        done = report(team, kind, "--format", "html", "--out", str(out), "--since", "7d")
        assert done.returncode == 0, done.stderr
        page = out.read_text()
        # Self-contained: no script, no stylesheet or image from elsewhere.
        assert "<script" not in page
        assert not re.search(r'(src|href)="(?!#)', page)
        common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'c'}"]
        picture = tmp_path / f"{kind}.png"
        shot = subprocess.run(
            [*common, f"--screenshot={picture}", out.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert shot.returncode == 0, shot.stderr[-2000:]
        _, _, pixels = png_pixels(picture)
        assert len(set(pixels)) > 20, f"the {kind} screenshot is blank"
        dom = subprocess.run(
            [*common, "--dump-dom", out.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        ).stdout  # fmt: skip
        assert f'<body data-report="{kind}">' in dom
        if kind == "thresholds":
            assert dom.count("<svg") == 4  # a histogram per numeric check with thresholds
            assert '<td class="v-too-tight">too tight</td>' in dom
            assert '<td class="v-too-loose">too loose</td>' in dom
        if kind == "uptime":
            assert "43m" in dom


def test_runbooks_from_the_command_exit_1_on_a_broken_link(team: Path, links: str) -> None:
    done = report(team, "runbooks", "--format", "json", "--timeout", "5s")
    assert done.returncode == 1, done.stderr
    verdicts = {link["url"]: link["verdict"] for link in json.loads(done.stdout)["links"]}
    assert verdicts == {
        f"{links}/missing": "broken",
        f"{links}/errors": "ok",
        f"{links}/latency": "ok",
    }


def test_bad_input_is_one_line(team: Path) -> None:
    done = report(team, "uptime", "--timezone", "Mars/Olympus")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "synthetic report: error: --timezone: unknown timezone 'Mars/Olympus' (e.g. Europe/Berlin)"
    ]


def test_the_runbook_check_reports_each_link_and_routes_to_info(tmp_path: Path, links: str) -> None:
    project = tmp_path / "runbook-team"
    (project / "checks").mkdir(parents=True)
    (project / "checks" / "check_runbooks.py").write_text(
        (REPO / "checks" / "check_runbooks.py").read_text()
    )
    (project / "checks" / "check_app.py").write_text(
        "import pytest\n\n"
        '@pytest.mark.metric("app.a", runbook="errors")\n@pytest.mark.critical("> 1")\n'
        "def check_a():\n    return 0\n\n"
        '@pytest.mark.metric("app.b", runbook="gone")\n@pytest.mark.critical("> 1")\n'
        "def check_b():\n    return 0\n"
    )
    (project / "synthetic.toml").write_text(
        'default_environment = "production"\n'
        f'[runbooks]\nbase_url = "{links}"\n'
        '[environments.production]\nbase_url = "http://127.0.0.1:9"\n'
        + RECEIVERS
        + '[[alerts.routes]]\nreceiver = "email-team"\nmetric = "runbook.link"\n'
        + '[[alerts.routes]]\nreceiver = "pagerduty-oncall"\nseverity = "critical"\n'
    )
    results = project / "results"
    done = synthetic_cmd(
        "run", "--config", str(project / "synthetic.toml"), "--results-dir", str(results),
        cwd=project, env={"SYNTHETIC_CHECK_RUNBOOKS": "1"},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout[-3000:]  # the broken link is CRITICAL
    checks = json.loads((results / "results.json").read_text())["checks"]
    links_seen = {
        c["labels"]["runbook"]: (c["value"], c["severity"])
        for c in checks
        if c["metric"] == "runbook.link"
    }
    # The runbook check names its own runbook (incident-response): not on this server.
    assert links_seen == {
        "errors": ("ok", "ok"),
        "gone": ("broken", "critical"),
        "incident-response": ("broken", "critical"),
    }
    sent = sorted(p.name.split("-", 1)[1] for p in (results / "alerts").glob("*.json"))
    assert sent == ["email-team-trigger.json"] * 2  # never the pager
    skipped = synthetic_cmd("run", "--config", str(project / "synthetic.toml"), "--results-dir",
                            str(tmp_path / "r2"), cwd=project)  # fmt: skip
    assert skipped.returncode == 0, skipped.stdout[-3000:]
