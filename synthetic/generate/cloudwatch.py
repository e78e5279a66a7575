"""Target ``cloudwatch``: one alarm per check and level on what the CloudWatch exporter
sends, as a CloudFormation template (troposphere), and ``--apply`` with boto3.

An alarm watches the check's metric (`synthetic.exporters.cloudwatch.metric_name`,
dimension ``Environment`` and the check's labels) when its threshold is one
ordering comparison of a number, or of the 1/0 a status word is sent as
(``!= 'ok'`` is ``HealthStatus < 1``); otherwise it watches ``CheckSeverity``,
the run's own verdict (>= 1 warning, >= 2 critical).

The period is the check's sustain (at least a minute, as the guide's "5 min"
and "1 min"), and the statistic is the one that makes a breach last it: the
minimum of a ``>`` metric over a sustained period is above the threshold only
if every sample was; without sustain, the worst sample of the minute.
Actions are SNS topics, one template parameter per receiver: the receivers
the ``[alerts]`` routes pick for the level (``AlarmActions``) and for
recoveries (``OKActions``, routed as ``info``).

The guide's five alarms are the checks that measure them, under the guide's names.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthetic.errors import ApplyError
from synthetic.exporters.cloudwatch import DEFAULT_NAMESPACE, SEVERITY_METRIC, metric_name
from synthetic.extras import require as require_extra
from synthetic.generate.conditions import Bound, numeric, status_condition
from synthetic.generate.model import LEVELS, SEVERITY_CODE, Artifact, Catalogue, Generated
from synthetic.generate.text import camel, duration, yaml_file
from synthetic.spec import CheckSpec
from synthetic.text import printable

FILE = "cloudwatch/alarms.yml"
OPERATORS = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
}
MAX_PERIOD_S = 86400  # CloudWatch: period x evaluation periods at most a day
MAX_DESCRIPTION = 1024


@dataclass(frozen=True)
class Alarm:
    """One alarm: PutMetricAlarm's arguments, less the actions (receiver names here)."""

    logical_id: str
    properties: dict[str, Any]
    alarm_receivers: tuple[str, ...]
    ok_receivers: tuple[str, ...]
    spec: CheckSpec
    level: str


def dimensions(
    spec: CheckSpec, environment: str, *, severity: bool = False
) -> list[dict[str, str]]:
    """The dimensions the exporter sends with the check's value (or its severity)."""
    found = [{"Name": "Environment", "Value": environment}]
    if severity:
        found.append({"Name": "Metric", "Value": spec.metric})
    for name, value in sorted(spec.labels.items()):
        if value != "" and name not in ("Environment", "Metric"):
            found.append({"Name": name, "Value": str(value)})
    return found


def alarms(catalogue: Catalogue, generated: Generated) -> list[Alarm]:
    namespace = catalogue.exporters.cloudwatch_namespace or DEFAULT_NAMESPACE
    found: list[Alarm] = []
    taken: set[str] = set()
    on_severity: list[CheckSpec] = []
    for spec in catalogue.checks:
        for level in LEVELS:
            threshold = spec.critical if level == "critical" else spec.warning
            if threshold is None:
                continue
            bound = _bound(spec, threshold)
            if bound is None:
                on_severity.append(spec)
                bound = Bound(">=", SEVERITY_CODE[level])
                metric = {
                    "MetricName": SEVERITY_METRIC,
                    "Dimensions": dimensions(spec, catalogue.environment, severity=True),
                }
            else:
                metric = {
                    "MetricName": metric_name(spec.metric, catalogue.exporters.cloudwatch_names),
                    "Dimensions": dimensions(spec, catalogue.environment),
                }
            sustain = catalogue.sustain_s(spec)
            period = min(MAX_PERIOD_S, max(60, math.ceil(sustain / 60) * 60))
            if period < sustain:
                generated.note(f"sustain longer than a day: alarms after {MAX_PERIOD_S}s", [spec])
            upper = bound.op in (">", ">=")
            # Sustained: the best sample must breach too; otherwise the worst one.
            statistic = "Minimum" if upper == (sustain > 0) else "Maximum"
            logical_id = _unique(
                catalogue.presentation.alarm(spec.display_name, level)
                or camel(spec.metric, *(spec.labels[k] for k in sorted(spec.labels)), level),
                taken,
            )
            description = (
                f"{spec.display_name} {level} in {catalogue.environment}: "
                f"{threshold.describe()}{f' for {duration(sustain)}' if sustain else ''}. "
                f"{spec.description or ''} Runbook: {spec.runbook or '-'}"
            )
            properties = {
                "AlarmName": f"synthetic-{catalogue.environment}-{logical_id}",
                "AlarmDescription": printable(description, MAX_DESCRIPTION),
                "Namespace": namespace,
                **metric,
                "Statistic": statistic,
                "Period": period,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": float(bound.number),
                "ComparisonOperator": OPERATORS[bound.op],
                "TreatMissingData": "missing",
            }
            found.append(
                Alarm(
                    logical_id,
                    properties,
                    tuple(catalogue.receivers(spec, level)),
                    tuple(catalogue.receivers(spec, "info")),
                    spec,
                    level,
                )
            )
    generated.note(
        "alarm on CheckSeverity, the run's verdict (CloudWatch compares one number with one "
        "threshold; an unknown, 3, counts as critical)",
        on_severity,
    )
    for name, level, named in catalogue.presentation.alarms():
        if not any(a.logical_id == named for a in found):
            generated.notes.append(f"alarm {named} ([generate]): no check {name} with a {level}")
    return found


def _bound(spec: CheckSpec, threshold: Any) -> Bound | None:
    condition = status_condition(spec.metric, threshold) or numeric(threshold)
    return condition.single if condition is not None else None


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    taken.add(candidate)
    return candidate


def topic_parameter(receiver: str) -> str:
    return camel(receiver) + "Topic"


def template(catalogue: Catalogue, found: list[Alarm]) -> dict[str, Any]:
    from troposphere import Parameter, Ref, Template
    from troposphere.cloudwatch import Alarm as AlarmResource
    from troposphere.cloudwatch import MetricDimension

    document = Template(
        Description=f"synthetic alarms for {catalogue.environment} ({catalogue.header})"
    )
    document.set_version("2010-09-09")
    receivers = sorted({r for a in found for r in (*a.alarm_receivers, *a.ok_receivers)})
    for receiver in receivers:
        document.add_parameter(
            Parameter(
                topic_parameter(receiver),
                Type="String",
                Description=f"ARN of the SNS topic that delivers to receiver {receiver}",
            )
        )
    for alarm in found:
        properties = dict(alarm.properties)
        properties["Dimensions"] = [MetricDimension(**d) for d in properties["Dimensions"]]
        document.add_resource(
            AlarmResource(
                alarm.logical_id,
                **properties,
                AlarmActions=[Ref(topic_parameter(r)) for r in alarm.alarm_receivers],
                OKActions=[Ref(topic_parameter(r)) for r in alarm.ok_receivers],
            )
        )
    built: dict[str, Any] = document.to_dict()
    return built


def generate(catalogue: Catalogue) -> Generated:
    generated = Generated()
    if not catalogue.exporters.cloudwatch_namespace:
        generated.notes.append(
            f"environment {catalogue.environment} sets no exporters.cloudwatch_namespace: "
            f"the alarms watch {DEFAULT_NAMESPACE}, where nothing is sent yet"
        )
    generated.notes.append(
        "CloudWatch has no inhibition: a check's warning alarm stays in alarm with its "
        "critical one; an unreachable target leaves the value missing (INSUFFICIENT_DATA)"
    )
    found = alarms(catalogue, generated)
    document = template(catalogue, found)
    generated.artifacts.append(
        Artifact(FILE, yaml_file(catalogue.header, generated.notes, document))
    )
    return generated


def generate_with(catalogue: Catalogue, options: Any) -> Generated:
    return generate(catalogue)


# --- --apply -----------------------------------------------------------------------


def put_alarms(found: Sequence[Alarm], topics: dict[str, str], client: Any) -> int:
    """PutMetricAlarm for each alarm, its actions the ``topics`` of its receivers
    (a receiver without a topic gets no action); the number put."""
    from botocore.exceptions import BotoCoreError, ClientError

    for number, alarm in enumerate(found):
        try:
            client.put_metric_alarm(
                **alarm.properties,
                AlarmActions=[topics[r] for r in alarm.alarm_receivers if r in topics],
                OKActions=[topics[r] for r in alarm.ok_receivers if r in topics],
            )
        except (BotoCoreError, ClientError) as exc:
            detail = printable(str(exc), 500)
            raise ApplyError(
                f"PutMetricAlarm {alarm.properties['AlarmName']} failed after {number} of "
                f"{len(found)} alarms: {detail}"
            ) from exc
    return len(found)


def apply_command(catalogue: Catalogue, sns: Sequence[str]) -> int:
    """``--apply``: put the alarms where the environment's CloudWatch exporter sends."""
    require_extra("aws", "synthetic generate cloudwatch --apply")
    import boto3

    topics: dict[str, str] = {}
    for item in sns:
        receiver, sep, arn = item.partition("=")
        if not sep or not receiver or not arn.startswith("arn:"):
            print(f"synthetic generate: error: --sns {item!r}: expected RECEIVER=arn:...",
                  file=sys.stderr)  # fmt: skip
            return 2
        if receiver not in catalogue.alerts.receivers:
            known = ", ".join(sorted(catalogue.alerts.receivers)) or "none"
            print(f"synthetic generate: error: --sns: no receiver {receiver!r} (defined: {known})",
                  file=sys.stderr)  # fmt: skip
            return 2
        topics[receiver] = arn
    generated = Generated()
    found = alarms(catalogue, generated)
    unset = sorted({r for a in found for r in (*a.alarm_receivers, *a.ok_receivers)} - set(topics))
    if unset:
        print(f"synthetic generate: cloudwatch: no --sns topic for {', '.join(unset)}: "
              "their alarms are put without that action")  # fmt: skip
    from botocore.exceptions import BotoCoreError

    exporters = catalogue.exporters
    try:
        client = boto3.client(
            "cloudwatch",
            region_name=exporters.cloudwatch_region,
            endpoint_url=exporters.cloudwatch_endpoint_url,
        )
        put = put_alarms(found, topics, client)
    except BotoCoreError as exc:  # no region, no credentials
        print(f"synthetic generate: cloudwatch: {exc}", file=sys.stderr)
        return 1
    except ApplyError as exc:
        print(f"synthetic generate: cloudwatch: {exc}", file=sys.stderr)
        return 1
    print(f"synthetic generate: cloudwatch: put {put} alarms ({len(topics)} SNS topics)")
    return 0
