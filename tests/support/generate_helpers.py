"""The repository's catalogue generated for each of its environments, once per test session.

`generated` runs ``synthetic generate all`` (the command, as a user runs it)
for sandbox, staging and production, with the variables staging and
production need set to dummy values; each `Generated` also holds the
`Catalogue` collected the same way, for tests that compare the files with it.
Receiver secrets get values no file may contain (`SECRETS`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from synthetic.generate.model import Catalogue
from synthetic.results import CheckResult, RunResult, Severity

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = str(Path(sys.executable).parent / "synthetic")
ENVIRONMENTS = ("sandbox", "staging", "production")
SECRETS = {
    "PAGERDUTY_ROUTING_KEY": "pd-routing-key-c0ffee",
    "SLACK_OPS_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/s3cr3t-hook",
    "SMTP_PASSWORD": "smtp-pass-d00d",
    "STAGING_MONITOR_TOKEN": "staging-token-f00d",
    "PRODUCTION_MONITOR_TOKEN": "production-token-beef",
}
DUMMIES = {
    **SECRETS,
    "STAGING_BFF_URL": "https://bff.staging.example.com",
    "PRODUCTION_BFF_URL": "https://bff.example.com",
    "SMTP_HOST": "smtp.example.com",
    "SYNTHETIC_HEARTBEAT_URL": "https://heartbeat.example.com/ping",
}


@dataclass(frozen=True)
class Generated:
    environment: str
    out: Path
    catalogue: Catalogue

    def text(self, path: str) -> str:
        return (self.out / path).read_text(encoding="utf-8")


def environ(**extra: str) -> dict[str, str]:
    """The test process's environment with the dummies, less any SYNTHETIC_* of the shell."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    return {**base, **DUMMIES, **extra}


def synthetic(*args: str, cwd: Path = REPO, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNTHETIC, *args],
        cwd=cwd,
        env=environ(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def collect(environment: str, config: Path | None = None) -> Catalogue:
    """The catalogue as ``synthetic generate`` collects it (in this process)."""
    from synthetic.cli import collect as collect_specs

    args = argparse.Namespace(
        command="generate",
        env=environment,
        config=str(config) if config else None,
        results_dir=None,
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMIES.items():
            patch.setenv(name, value)
        patch.chdir(REPO)
        specs, loaded = collect_specs(args, ["-p", "no:cacheprovider"])
    assert loaded is not None
    return Catalogue.from_config(specs, loaded)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Generated]:
    """Every target for every environment, generated in this process (the command
    itself is run by the --check tests)."""
    from synthetic.generate.command import TARGETS, Options, write

    found = {}
    for environment in ENVIRONMENTS:
        out = tmp_path_factory.mktemp(f"generated-{environment}")
        catalogue = collect(environment)
        artifacts = [
            artifact
            for target in TARGETS.values()
            for artifact in target.generate(catalogue, Options()).artifacts
        ]
        write(out, artifacts, ())
        found[environment] = Generated(environment, out, catalogue)
    return found


def exported_run(catalogue: Catalogue) -> RunResult:
    """A run of the catalogue as the exporters see one: each check OK, with a number
    where its thresholds are numbers and a status word where they are words."""
    checks = []
    for spec in catalogue.checks:
        numeric = any(
            t is not None and not isinstance(getattr(t, "operand", 0), str)
            and not any(isinstance(i, str) for i in getattr(t, "items", ()))
            for t in (spec.warning, spec.critical)
        )  # fmt: skip
        checks.append(
            CheckResult(
                id=spec.node_id,
                metric=spec.metric,
                severity=Severity.OK,
                reason="ok",
                value=1.5 if numeric else "ok",
                unit=spec.unit,
                labels=dict(spec.labels),
            )
        )
    return RunResult(
        run_id="r1",
        environment=catalogue.environment,
        target=None,
        started_at="2025-01-15T10:30:00.000Z",
        finished_at="2025-01-15T10:30:01.000Z",
        checks=tuple(checks),
    )
