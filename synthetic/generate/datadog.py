"""Target ``datadog``: one metric monitor per check on what the DogStatsD exporter
sends, as Monitors API JSON (``POST /api/v1/monitor`` takes each of ``monitors``).

A monitor holds both levels (``options.thresholds``). It watches the check's
gauge (`synthetic.exporters.dogstatsd.metric_name`, tags ``environment`` and
the check's labels) when both thresholds are ordering comparisons of a number
(or of the 1/0 a status word is sent as) in one direction; otherwise
``<prefix>synthetic.severity``, the run's own verdict (warning 1, critical 2).
The window is the check's sustain (at least a minute), aggregated so that a
breach must last it (``min`` of a ``>`` metric). Sibling checks of one metric
are told apart by their tags: a check without a sibling's tag excludes it
(``!dependency:*``).

Notifications follow the ``[alerts]`` routes: the receivers of ``critical``
under ``{{#is_alert}}``, of ``warning`` under ``{{#is_warning}}``, of ``info``
under ``{{#is_recovery}}``, each as ``@<receiver name>`` (name the DataDog
integration handle after the receiver: ``@pagerduty-oncall``, ``@slack-ops``)
or, for email receivers, their addresses.
"""

from __future__ import annotations

import math
from typing import Any

from synthetic.exporters.dogstatsd import Naming, metric_name, severity_metric
from synthetic.generate.conditions import Bound, literal, numeric, status_condition
from synthetic.generate.model import SEVERITY_CODE, Artifact, Catalogue, Generated
from synthetic.generate.text import json_file
from synthetic.spec import CheckSpec
from synthetic.thresholds import Threshold

FILE = "datadog/monitors.json"
BLOCKS = (("critical", "is_alert"), ("warning", "is_warning"), ("info", "is_recovery"))


def scope(spec: CheckSpec, catalogue: Catalogue, *, severity: bool = False) -> str:
    """The tags that select this check's series, and none of its siblings'."""
    tags = [f"environment:{catalogue.environment}"]
    if severity:
        tags.append(f"metric:{spec.metric}")
    tags += [f"{k}:{v}" for k, v in sorted(spec.labels.items())]
    siblings = {
        key
        for other in catalogue.checks
        if other.metric == spec.metric and other.node_id != spec.node_id
        for key in other.labels
    }
    tags += [f"!{key}:*" for key in sorted(siblings - set(spec.labels))]
    return ",".join(tags)


def _bounds(spec: CheckSpec) -> dict[str, Bound] | None:
    """Each level's bound, when DataDog can hold them in one monitor: one direction,
    the warning before the critical."""
    found: dict[str, Bound] = {}
    for level, threshold in (("critical", spec.critical), ("warning", spec.warning)):
        if threshold is None:
            continue
        condition = status_condition(spec.metric, threshold) or numeric(threshold)
        bound = condition.single if condition is not None else None
        if bound is None:
            return None
        found[level] = bound
    if len({bound.op for bound in found.values()}) != 1:
        return None
    if "critical" in found and "warning" in found:
        crit, warn = found["critical"].number, found["warning"].number
        if (crit < warn) if found["critical"].op in (">", ">=") else (crit > warn):
            return None
    return found


def monitor(spec: CheckSpec, catalogue: Catalogue) -> tuple[dict[str, Any], bool]:
    """The monitor of ``spec``, and whether it watches the check's own gauge."""
    bounds = _bounds(spec)
    naming = Naming.of(catalogue.exporters)
    if bounds is None:
        name = severity_metric(naming)
        bounds = {
            level: Bound(">=", SEVERITY_CODE[level])
            for level, threshold in (("critical", spec.critical), ("warning", spec.warning))
            if threshold is not None
        }
        tags = scope(spec, catalogue, severity=True)
    else:
        name = metric_name(spec.metric, naming)
        tags = scope(spec, catalogue)
    # DataDog needs a critical threshold: a warning-only check alerts at its warning.
    alert = bounds.get("critical") or bounds["warning"]
    sustain = catalogue.sustain_s(spec)
    upper = alert.op in (">", ">=")
    aggregate = "min" if upper == (sustain > 0) else "max"
    window = max(1, math.ceil(sustain / 60))
    thresholds = {level: bound.number for level, bound in bounds.items()}
    if "critical" not in bounds:
        thresholds = {"critical": alert.number}
    query = (
        f"{aggregate}(last_{window}m):{aggregate}:{name}{{{tags}}} "
        f"{alert.op} {literal(alert.number)}"
    )
    labels = [f"{k}:{v}" for k, v in sorted(spec.labels.items())]
    body = {
        "name": f"[{catalogue.environment}] "
        + catalogue.presentation.datadog_monitors.get(spec.display_name, spec.display_name),
        "type": "query alert",
        "query": query,
        "message": _message(spec, catalogue, window if sustain > 0 else 0),
        "tags": sorted(
            {
                f"environment:{catalogue.environment}",
                f"metric:{spec.metric}",
                f"priority:{spec.priority}",
                "generated-by:synthetic",
                *([f"component:{spec.component}"] if spec.component else []),
                *labels,
            }
        ),
        "priority": int(spec.priority[1:]),
        "options": {
            "thresholds": thresholds,
            "notify_no_data": False,
            "require_full_window": False,
            "include_tags": True,
        },
    }
    return body, name != severity_metric(naming)


def _message(spec: CheckSpec, catalogue: Catalogue, minutes: int) -> str:
    levels = [
        f"{level} {threshold.describe()}"
        for level, threshold in (("critical", spec.critical), ("warning", spec.warning))
        if isinstance(threshold, Threshold)
    ]
    lasting = f" for {minutes} min" if minutes else ""
    lines = [
        spec.description or spec.display_name,
        "",
        f"{spec.display_name} in {catalogue.environment}: {', '.join(levels)}{lasting}.",
    ]
    if spec.runbook:
        lines.append(f"Runbook: {spec.runbook}")
    lines.append("")
    for severity, block in BLOCKS:
        if block == "is_alert" and spec.critical is None:
            severity = "warning"  # its alert is the warning (see `monitor`)
        handles = _handles(catalogue, catalogue.receivers(spec, severity))
        if handles:
            lines.append(f"{{{{#{block}}}}}{' '.join(handles)}{{{{/{block}}}}}")
    lines += ["", catalogue.header]
    return "\n".join(lines)


def _handles(catalogue: Catalogue, receivers: list[str]) -> list[str]:
    handles = []
    for name in receivers:
        receiver = catalogue.alerts.receivers[name]
        if receiver.type == "email":
            handles += [f"@{address}" for address in receiver.email_to]
        else:
            handles.append(f"@{name}")
    return handles


def generate(catalogue: Catalogue) -> Generated:
    generated = Generated()
    monitors = []
    on_severity = []
    for spec in catalogue.checks:
        body, own = monitor(spec, catalogue)
        monitors.append(body)
        if not own:
            on_severity.append(spec)
    if not catalogue.exporters.dogstatsd:
        generated.notes.append(
            f"environment {catalogue.environment} sets no exporters.dogstatsd: "
            "the monitors watch gauges nothing sends yet"
        )
    generated.note(
        f"monitor {severity_metric(Naming.of(catalogue.exporters))}, the run's verdict (a metric "
        "monitor compares one "
        "number in one direction; an unknown, 3, counts as critical)",
        on_severity,
    )
    warning_only = [s for s in catalogue.checks if s.critical is None]
    generated.note("no critical threshold: the monitor alerts at the warning", warning_only)
    for metric, named in sorted(catalogue.presentation.datadog_monitors.items()):
        if not any(spec.display_name == metric for spec in catalogue.checks):
            generated.notes.append(f"monitor {named} ([generate]): no check {metric}")
    document = {"generated_by": catalogue.header, "notes": generated.notes, "monitors": monitors}
    generated.artifacts.append(Artifact(FILE, json_file(document)))
    return generated


def generate_with(catalogue: Catalogue, options: Any) -> Generated:
    return generate(catalogue)
