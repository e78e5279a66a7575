"""One run's state: options resolved once, results gathered on the controller.

Held in ``config.stash`` (never in module globals), so in-process pytester
runs do not leak into each other.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synthetic.config import Config, Environment, load_config
from synthetic.errors import ConfigError, StateError
from synthetic.options import BY_DEST
from synthetic.outcome import Outcome, shown_reason
from synthetic.results import CheckResult, RunResult, json_safe, masked_json
from synthetic.spec import CheckSpec
from synthetic.state import Samples, StateStore, empty_state, merge_samples, open_store
from synthetic.text import iso_utc

LOCATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def option(config: pytest.Config, dest: str) -> str | None:
    """A setting of `synthetic.options.OPTIONS`, as this pytest run resolves it."""
    return BY_DEST[dest].resolve(
        config.getoption(dest), environ=os.environ, ini=lambda key: config.getini(key) or None
    )


def location_name(value: str | None) -> str | None:
    """A location as given, checked: a short name that can be a label and a key."""
    if value is None or not value.strip():
        return None
    name = value.strip()
    if not LOCATION_NAME.fullmatch(name):
        raise ConfigError(
            f"--location / SYNTHETIC_LOCATION: {name[:80]!r} is not a location name "
            "(letters, digits, '.', '_' and '-', at most 63)"
        )
    return name


RUN_KEY = pytest.StashKey["RunState"]()
SPEC_KEY = pytest.StashKey[CheckSpec]()
OUTCOME_KEY = pytest.StashKey[Outcome]()
SAMPLES_KEY = pytest.StashKey[Samples]()


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def now_iso() -> str:
    return iso_utc(timespec="milliseconds")


@dataclass
class RunState:
    """Everything one pytest session of `synthetic` knows, in ``config.stash``."""

    config: Config
    run_id: str
    started_at: str
    results_dir: Path
    fail_on: str
    alerts_mode: str
    location: str | None
    is_worker: bool
    store: StateStore | None
    previous: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    results: dict[str, CheckResult] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    run: RunResult | None = None
    results_path: Path | None = None
    alert_report: Any = None  # synthetic.alerts.pipeline.AlertReport, once decided
    exports: list[str] = field(default_factory=list)  # one line per exporter that ran
    run_dir: Path | None = None  # the run's scratch directory (synthetic.rundir)

    @classmethod
    def create(cls, pytest_config: pytest.Config) -> RunState:
        workerinput: Mapping[str, Any] | None = getattr(pytest_config, "workerinput", None)
        config = load_config(
            path=option(pytest_config, "synthetic_config"),
            environment=option(pytest_config, "synthetic_env"),
            search_from=pytest_config.invocation_params.dir,
        )
        results_dir = pytest_config.invocation_params.dir / str(
            option(pytest_config, "synthetic_results_dir")
        )
        fail_on = str(option(pytest_config, "synthetic_fail_on"))
        alerts_mode = str(option(pytest_config, "synthetic_alerts"))
        run_dir = None
        if workerinput is not None:
            run_id, started_at = (
                workerinput["synthetic_run_id"],
                workerinput["synthetic_started_at"],
            )
            run_dir = Path(workerinput["synthetic_run_dir"])
        else:
            run_id, started_at = new_run_id(), now_iso()
        state = cls(
            config=config,
            run_id=run_id,
            started_at=started_at,
            results_dir=results_dir,
            fail_on=fail_on,
            alerts_mode=alerts_mode,
            location=location_name(option(pytest_config, "synthetic_location")),
            is_worker=workerinput is not None,
            store=None,
            previous=empty_state(),
            run_dir=run_dir,
        )
        state._open_store()
        return state

    def _open_store(self) -> None:
        try:
            self.store = open_store(
                self.config.state,
                environment=self.config.environment.name,
                results_dir=self.results_dir,
                describe=self.config.masker.text(self.config.state or ""),
            )
            self.previous = self.store.load()
        except StateError as exc:
            # A broken store must not stop the checks: they run without history.
            self.notes.append(f"state: {exc}")

    def samples_for(self, item: pytest.Item) -> Samples:
        samples = item.stash.get(SAMPLES_KEY, None)
        if samples is None:
            spec = item.stash.get(SPEC_KEY, None)
            key = spec.display_name if spec is not None else item.nodeid
            samples = Samples(self.previous.get("samples", {}).get(key, {}))
            item.stash[SAMPLES_KEY] = samples
        return samples

    def make_result(
        self, item: pytest.Item, spec: CheckSpec, outcome: Outcome, duration_s: float
    ) -> CheckResult:
        samples = item.stash.get(SAMPLES_KEY, None)
        masker = self.config.masker
        return CheckResult(
            id=spec.node_id,
            metric=spec.metric,
            severity=outcome.severity,
            reason=shown_reason(outcome.reason, masker.text),
            value=masker.data(json_safe(outcome.value)),
            unit=outcome.unit,
            component=spec.component,
            warning=spec.warning.text if spec.warning else None,
            critical=spec.critical.text if spec.critical else None,
            runbook=spec.runbook,
            priority=spec.priority,
            duration_ms=duration_s * 1000,
            labels=dict(spec.labels),
            evidence=masked_json(outcome.evidence, masker.data),
            samples=dict(samples.recorded) if samples is not None else {},
            sustain_s=spec.sustain_s,
            reaches=spec.reaches,
            depends_on=spec.depends_on,
            unreachable=_unreachable_target(spec, outcome),
        )

    def finish(self) -> RunResult:
        env = self.config.environment
        self.run = RunResult(
            run_id=self.run_id,
            environment=env.name,
            target=self.config.masker.text(env.base_url) if env.base_url else None,
            started_at=self.started_at,
            finished_at=now_iso(),
            checks=tuple(self.results.values()),
            errors=tuple(self.errors),
            interrupted=self.interrupted,
            location=self.location,
        )
        return self.run

    def write_results(self, run: RunResult) -> Path | None:
        path = self.results_dir / "results.json"
        try:
            run.write(path)
        except OSError as exc:
            self.notes.append(f"results: cannot write {path}: {exc.strerror}")
            return None
        return path

    def save_state(self, run: RunResult) -> None:
        from synthetic.logs.shared import take_state

        logs = take_state(self.results_dir, self.run_id)  # cleans up the run's files too
        if self.store is None:
            return
        document = self.previous
        for check in run.checks:
            merge_samples(document, check.key, check.samples)
        if logs is not None:
            document["logs"] = logs
        try:
            self.store.save(document)
        except StateError as exc:
            self.notes.append(f"state: {exc}")


def _unreachable_target(spec: CheckSpec, outcome: Outcome) -> str | None:
    return unreachable_target(spec.reaches, outcome.via) if outcome.unreachable else None


def unreachable_target(reaches: tuple[str, ...], via: str | None) -> str:
    """Which system an unreachable check could not reach: the one it reaches,
    else the one its client library talks to (``"http"`` is the BFF)."""
    named = {"http": "bff"}.get(via or "", via)
    if named in reaches or (named is not None and not reaches):
        return named
    if len(reaches) == 1:
        return reaches[0]
    return named or "target"


def run_state(config: pytest.Config) -> RunState:
    try:
        return config.stash[RUN_KEY]
    except KeyError:
        raise pytest.UsageError("synthetic: the plugin is not configured") from None


def selected_environment(config: pytest.Config) -> Environment:
    """The environment this run measures (``--env``, ``SYNTHETIC_ENV`` or the
    config's default), with its settings: for a conftest's hooks, such as
    ``pytest_generate_tests`` repeating a check for each configured queue."""
    return run_state(config).config.environment


def selected_config(config: pytest.Config) -> Config:
    """The run's whole config (its file as ``source``, the selected environment,
    the alerts): for a conftest's hooks, e.g. validating the catalogue's ``params``."""
    return run_state(config).config
