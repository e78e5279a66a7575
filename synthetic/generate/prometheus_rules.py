"""Target ``prometheus-rules``: alerting rules on what the Prometheus exporter writes,
and ``promtool test rules`` unit tests that prove them.

Per check, a ``critical`` and a ``warning`` rule (same alert name, told apart by
``severity``, so Alertmanager's inhibit rule mutes a check's warning while its
critical fires), ``for:`` the check's sustain. A rule is the threshold on
``synthetic_check_value`` when the threshold is numeric; Prometheus holds no
strings, so a string or predicate threshold alerts on ``synthetic_check_severity``
instead: the run's own verdict under the same threshold. Each rule also covers
what the value cannot show: an unreachable target (the severity its marker
gives, without a value) and, for ``warning``, a check that could not measure
(UNKNOWN), as the alert pipeline treats them. One more rule, the dead man's
switch, fires when runs stop arriving.

The unit tests put, for every bound of every check, a series at the bound and
one float to each side of it, and expect each level's alert exactly when the
check's own threshold (`Threshold.breached`) says it is breached, after ``for:``
and not before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from synthetic.exporters.prometheus import prometheus_labels
from synthetic.generate.conditions import Condition, boundary_points, literal, numeric
from synthetic.generate.model import LEVELS, SEVERITY_CODE, Artifact, Catalogue, Generated
from synthetic.generate.text import camel, duration, promql_string, yaml_file
from synthetic.results import Severity
from synthetic.spec import CheckSpec

VALUE = "synthetic_check_value"
SEVERITY = "synthetic_check_severity"
RUN_TIMESTAMP = "synthetic_run_timestamp_seconds"
RULES_FILE = "prometheus/rules.yml"
TESTS_FILE = "prometheus/rules.test.yml"
RUNS_STOPPED = "SyntheticRunsStopped"
# What a severity code means to the alert pipeline (`synthetic.alerts.decide`):
# UNKNOWN is a warning, as a check that cannot measure may hide a breach.
ALERT_LEVEL = {1: "warning", 2: "critical", 3: "warning"}


@dataclass(frozen=True)
class Rule:
    """One alerting rule of one check at one level."""

    spec: CheckSpec
    level: str
    expr: str
    for_s: float
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def alert(self) -> str:
        return alert_name(self.spec)

    def to_yaml(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_s > 0:
            rule["for"] = duration(self.for_s)
        rule["labels"] = self.labels
        rule["annotations"] = self.annotations
        return rule


def alert_name(spec: CheckSpec) -> str:
    return "Synthetic" + camel(spec.metric)


def series_labels(spec: CheckSpec, environment: str) -> dict[str, str]:
    """The labels the exporter gives the check's series (empty ``label_*`` left out:
    Prometheus does not tell them from absent ones)."""
    return {
        "environment": environment,
        "check": spec.node_id,
        "metric": spec.metric,
        **{k: v for k, v in prometheus_labels(spec.labels).items() if v != ""},
    }


def selector(name: str, spec: CheckSpec, environment: str) -> str:
    matchers = f"environment={promql_string(environment)},check={promql_string(spec.node_id)}"
    return f"{name}{{{matchers}}}"


def promql(condition: Condition, series: str) -> str | None:
    """``condition`` on ``series``; None when it can never hold."""
    clauses = [
        " and ".join(f"{series} {b.op} {literal(b.number)}" for b in clause) or series
        for clause in condition.clauses
    ]
    if not clauses:
        return None
    if len(clauses) == 1:
        return clauses[0]
    return " or ".join(f"({clause})" for clause in clauses)


def rules_for(spec: CheckSpec, catalogue: Catalogue, generated: Generated) -> list[Rule]:
    env = catalogue.environment
    value, severity = selector(VALUE, spec, env), selector(SEVERITY, spec, env)
    found = []
    for level in LEVELS:
        threshold = spec.critical if level == "critical" else spec.warning
        code = SEVERITY_CODE[level]
        parts: list[str] = []
        why: list[str] = []
        condition = numeric(threshold)
        if threshold is not None and condition is not None:
            text = promql(condition, value)
            if text is None:
                generated.note(f"{level} threshold can never be breached: no rule", [spec])
            else:
                parts.append(text)
                why.append(threshold.describe())
        elif threshold is not None:
            parts.append(f"{severity} == {code}")
            why.append(f"{threshold.describe()}, by the run's verdict")
        if spec.unreachable.value == level and (condition is not None or threshold is None):
            # Unreachable: the marker's severity without a value.
            parts.append(f"({severity} == {code} unless {value})")
            why.append("target unreachable")
        if level == "warning":
            parts.append(f"{severity} == {SEVERITY_CODE['unknown']}")
            why.append("could not measure")
        if not parts:
            continue
        # `check` as a rule label too: the checks of one metric share an alert name.
        labels = {
            "severity": level,
            "priority": spec.priority,
            "environment": env,
            "check": spec.node_id,
        }
        if spec.component:
            labels["component"] = spec.component
        annotations = {
            "summary": f"{spec.display_name} {level} in {env}: {'; '.join(why)}",
            "description": spec.description or spec.display_name,
        }
        if spec.runbook:
            annotations["runbook_url"] = spec.runbook
        expr = parts[0] if len(parts) == 1 else " or ".join(_grouped(p) for p in parts)
        found.append(Rule(spec, level, expr, catalogue.sustain_s(spec), labels, annotations))
    return found


def _grouped(part: str) -> str:
    return part if part.startswith("(") or " or " not in part else f"({part})"


def runs_stopped(catalogue: Catalogue, stale_after_s: float) -> dict[str, Any]:
    """The dead man's switch: no run has finished for ``stale_after_s``, or none ever
    arrived. Critical, with the highest priority of the catalogue: a stopped monitor
    hides every check."""
    env = catalogue.environment
    series = f"{RUN_TIMESTAMP}{{environment={promql_string(env)}}}"
    priority = min((spec.priority for spec in catalogue.checks), default="P1")
    return {
        "alert": RUNS_STOPPED,
        "expr": (
            f"time() - max by (environment) ({series}) > {literal(stale_after_s)}"
            f" or absent({series})"
        ),
        "labels": {"severity": "critical", "priority": priority, "environment": env},
        "annotations": {
            "summary": f"no synthetic run has finished in {env} for {duration(stale_after_s)}",
            "description": "The monitor stopped (or never started): no check can alert.",
        },
    }


def generate(catalogue: Catalogue, *, stale_after_s: float) -> Generated:
    generated = Generated()
    rules = [rule for spec in catalogue.checks for rule in rules_for(spec, catalogue, generated)]
    generated.note(
        "alert on synthetic_check_severity (Prometheus holds no strings; the run applied "
        "the threshold)",
        [s for s in catalogue.checks if _by_verdict(s)],
    )
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        group = f"synthetic-{catalogue.environment}-{rule.spec.component or 'checks'}"
        groups.setdefault(group, []).append(rule.to_yaml())
    runs = f"synthetic-{catalogue.environment}-runs"
    groups[runs] = [runs_stopped(catalogue, stale_after_s)]
    document = {"groups": [{"name": name, "rules": groups[name]} for name in sorted(groups)]}
    generated.artifacts.append(
        Artifact(RULES_FILE, yaml_file(catalogue.header, generated.notes, document))
    )
    tests = unit_tests(catalogue, rules, stale_after_s)
    generated.artifacts.append(
        Artifact(TESTS_FILE, yaml_file(catalogue.header, [], tests, aliases=True))
    )
    return generated


def _by_verdict(spec: CheckSpec) -> bool:
    return any(t is not None and numeric(t) is None for t in (spec.warning, spec.critical))


# --- promtool unit tests ---------------------------------------------------------


def unit_tests(catalogue: Catalogue, rules: list[Rule], stale_after_s: float) -> dict[str, Any]:
    """``promtool test rules`` input for ``rules`` (see the module docstring).

    Test group *k* holds the *k*-th case of every check at once (their series
    differ by ``check``), so promtool evaluates the rules a few times, not once
    per case."""
    delays = [rule.for_s for rule in rules] + [stale_after_s]
    interval = math.gcd(60, *(round(s) for s in delays if s > 0))
    by_check: dict[str, list[Rule]] = {}
    for rule in rules:
        by_check.setdefault(rule.spec.node_id, []).append(rule)
    env = catalogue.environment
    cases = {
        spec.node_id: list(_cases(spec)) for spec in catalogue.checks if spec.node_id in by_check
    }
    rounds = max((len(found) for found in cases.values()), default=0)
    groups = [
        _round(
            k,
            [(by_check[i], found[k]) for i, found in cases.items() if k < len(found)],
            env,
            interval,
        )
        for k in range(rounds)
    ]
    groups += _runs_groups(catalogue, stale_after_s, interval)
    return {
        "rule_files": ["rules.yml"],
        "evaluation_interval": duration(interval),
        "tests": groups,
    }


Case = tuple[str, list[tuple[str, float]], set[str]]


def _round(
    k: int, members: list[tuple[list[Rule], Case]], environment: str, interval: int
) -> dict[str, Any]:
    """One test group: a case of each member check, and the alerts expected of them
    before and after their ``for:``."""
    longest = max(round(rules[0].for_s) for rules, _ in members)
    samples = longest // interval + 2
    input_series = []
    times: set[int] = set()
    for rules, (_, series, _) in members:
        labels = series_labels(rules[0].spec, environment)
        input_series += [
            {"series": _series_text(metric, labels), "values": f"{literal(value)}x{samples}"}
            for metric, value in series
        ]
        for_s = round(rules[0].for_s)
        times.update((for_s, for_s - interval) if for_s > 0 else (for_s,))
    # One object per rule, written once and referred to after (YAML aliases).
    alerts = {
        (rule.spec.node_id, rule.level): {
            "exp_labels": {**series_labels(rule.spec, environment), **rule.labels},
            "exp_annotations": rule.annotations,
        }
        for rules, _ in members
        for rule in rules
    }
    checks = []
    for alert in sorted({rules[0].alert for rules, _ in members}):
        for at in sorted(times):
            expected = [
                alerts[rule.spec.node_id, rule.level]
                for rules, (_, _, levels) in members
                if rules[0].alert == alert and at >= round(rules[0].for_s)
                for rule in rules
                if rule.level in levels
            ]
            checks.append({"eval_time": duration(at), "alertname": alert, "exp_alerts": expected})
    return {
        "name": f"round {k + 1}: one case of each of {len(members)} checks",
        "interval": duration(interval),
        "input_series": input_series,
        "alert_rule_test": checks,
    }


def _cases(spec: CheckSpec) -> Iterator[tuple[str, list[tuple[str, float]], set[str]]]:
    """(what, series as (metric, value), the levels whose alert must fire).

    Which levels fire comes from the check's own thresholds (numbers) and from
    how the alert pipeline reads a severity (no value), never from the rules.
    """
    conditions = [numeric(t) for t in (spec.critical, spec.warning) if t is not None]
    numbers = sorted({p for c in conditions if c is not None for p in boundary_points(c)})
    for value in numbers:
        levels = {
            level
            for level, threshold in (("critical", spec.critical), ("warning", spec.warning))
            if threshold is not None and numeric(threshold) is not None
            and threshold.breached(value)
        }  # fmt: skip
        worst = "critical" if "critical" in levels else "warning" if levels else "ok"
        code = SEVERITY_CODE[worst]  # what the exporter writes beside the value
        yield f"value {literal(value)}", [(VALUE, value), (SEVERITY, code)], levels
    codes = {SEVERITY_CODE["unknown"]}
    if spec.unreachable is not Severity.UNKNOWN:
        codes.add(SEVERITY_CODE[spec.unreachable.value])
    for level, threshold in (("critical", spec.critical), ("warning", spec.warning)):
        if threshold is not None and numeric(threshold) is None:
            codes.add(SEVERITY_CODE[level])
    for code in sorted(codes):
        yield f"severity {code} without a value", [(SEVERITY, code)], {ALERT_LEVEL[code]}


def _series_text(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f"{name}={promql_string(value)}" for name, value in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def _runs_groups(catalogue: Catalogue, stale_after_s: float, interval: int) -> list[dict[str, Any]]:
    env = catalogue.environment
    rule = runs_stopped(catalogue, stale_after_s)
    fired = [
        {
            "exp_labels": {"environment": env, **rule["labels"]},
            "exp_annotations": rule["annotations"],
        }
    ]
    stale = round(stale_after_s)
    samples = stale // interval + 2
    series = _series_text(RUN_TIMESTAMP, {"environment": env})
    other = _series_text(RUN_TIMESTAMP, {"environment": env + "-other"})

    def group(name: str, values: str | None, checks: list[tuple[int, list[Any]]]) -> dict[str, Any]:
        return {
            "name": f"{RUNS_STOPPED}: {name}",
            "interval": duration(interval),
            "input_series": [
                {"series": series if values else other, "values": values or f"0x{samples}"}
            ],
            "alert_rule_test": [
                {"eval_time": duration(at), "alertname": RUNS_STOPPED, "exp_alerts": alerts}
                for at, alerts in checks
            ],
        }

    return [
        group("runs arriving", f"0+{interval}x{samples}", [(stale + interval, [])]),
        group("last run at 0s", f"0x{samples}", [(stale, []), (stale + interval, fired)]),
        group("no run ever", None, [(0, fired)]),
    ]


def generate_with(catalogue: Catalogue, options: Any) -> Generated:
    return generate(catalogue, stale_after_s=options.stale_after_s)
