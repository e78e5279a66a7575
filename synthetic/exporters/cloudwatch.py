"""A run's metrics as CloudWatch custom metrics (``PutMetricData`` through boto3).

Each check with a numeric value becomes one datum in the configured
namespace, named as the config's ``cloudwatch_names`` name its metric (the
Customer Portal's: ``whmcs.queue_size`` is the guide's ``WhmcsQueueDepth``)
or else by its metric id in CamelCase (``db.size`` is ``DbSize``), with dimension
``Environment`` (and ``Location`` when the run names one) and the check's
labels as further dimensions. Every check that
ran also gives a ``CheckSeverity`` datum (0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN, the Nagios codes) with dimension ``Metric=<metric id>``, so an alarm
can watch a check whose value is not a number.

CloudWatch rejects what breaks its limits, but moto (the test stand-in) does
not, so `validate` checks them before anything is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from synthetic.errors import ExportError
from synthetic.exporters import STATUS_METRICS
from synthetic.exporters import numeric_value as exported_value
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.text import printable
from synthetic.units import unit_kind

__all__ = [
    "DEFAULT_NAMESPACE",
    "MAX_METRICS_PER_REQUEST",
    "SEVERITY_METRIC",
    "STATUS_METRICS",
    "cloudwatch_unit",
    "metric_data",
    "metric_name",
    "numeric_value",
    "put",
    "validate",
]

DEFAULT_NAMESPACE: Final = "Synthetic"  # where `synthetic generate`'s alarms look when unset
SEVERITY_METRIC: Final = "CheckSeverity"

# Our units -> CloudWatch's. A convertible unit without a CloudWatch
# equivalent (min, KiB, /min, ratio) is sent as "None" rather than mislabelled;
# an opaque unit (requests, jobs) counts something: "Count".
_UNITS: Final[Mapping[str, str]] = {
    "us": "Microseconds",
    "\u00b5s": "Microseconds",
    "\u03bcs": "Microseconds",
    "ms": "Milliseconds",
    "s": "Seconds",
    "sec": "Seconds",
    "second": "Seconds",
    "seconds": "Seconds",
    "B": "Bytes",
    "byte": "Bytes",
    "bytes": "Bytes",
    "kB": "Kilobytes",
    "KB": "Kilobytes",
    "MB": "Megabytes",
    "GB": "Gigabytes",
    "TB": "Terabytes",
    "%": "Percent",
    "percent": "Percent",
    "/s": "Count/Second",
    "/sec": "Count/Second",
}

# CloudWatch's documented limits (PutMetricData, MetricDatum, Dimension).
MAX_METRICS_PER_REQUEST: Final = 1000
MAX_DIMENSIONS: Final = 30
MAX_NAME_CHARS: Final = 255
MAX_DIMENSION_VALUE_CHARS: Final = 1024
MAX_MAGNITUDE: Final = 2.0**360
MIN_MAGNITUDE: Final = 2.0**-360
MAX_AGE: Final = timedelta(weeks=2)
MAX_AHEAD: Final = timedelta(hours=2)
CLOUDWATCH_UNITS: Final = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
        "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
        "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
        "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
        "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
    }
)  # fmt: skip


def metric_name(metric: str, names: Mapping[str, str] | None = None) -> str:
    """The CloudWatch name of ``metric``: its name in ``names`` (the config's
    ``cloudwatch_names``), else its id in CamelCase."""
    if names and metric in names:
        return names[metric]
    parts = "".join(c if c.isalnum() else " " for c in metric).split()
    return "".join(part[:1].upper() + part[1:] for part in parts)


def cloudwatch_unit(unit: str | None) -> str:
    """CloudWatch's unit for one of ours (see the module's mapping)."""
    if unit is None:
        return "None"
    if unit in _UNITS:
        return _UNITS[unit]
    return "None" if unit_kind(unit) is not None else "Count"


def numeric_value(check: CheckResult) -> float | None:
    """The number CloudWatch gets for ``check`` (see `synthetic.exporters.numeric_value`)."""
    value = exported_value(check)
    return None if value is None else float(value)


def metric_data(
    run: RunResult, *, now: datetime | None = None, names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The ``MetricData`` entries of ``run``, in check order (pure: sends nothing),
    named by `metric_name` with ``names``.

    Stamped ``now`` when given, else when the run finished. Skipped checks
    give nothing; a check without a number gives only its severity.
    """
    timestamp = now or _finished(run)
    data: list[dict[str, Any]] = []
    for check in run.checks:
        if check.severity is Severity.SKIPPED:
            continue
        dimensions = _dimensions(run.environment, check.labels, run.location)
        value = numeric_value(check)
        if value is not None:
            unit = "None" if check.metric in STATUS_METRICS else cloudwatch_unit(check.unit)
            data.append(
                {
                    "MetricName": metric_name(check.metric, names),
                    "Dimensions": dimensions,
                    "Value": value,
                    "Unit": unit,
                    "Timestamp": timestamp,
                }
            )
        data.append(
            {
                "MetricName": SEVERITY_METRIC,
                "Dimensions": [
                    dimensions[0],
                    {"Name": "Metric", "Value": check.metric},
                    *dimensions[1:],
                ],
                "Value": float(check.severity.nagios_code),
                "Unit": "None",
                "Timestamp": timestamp,
            }
        )
    return data


def _dimensions(
    environment: str, labels: Mapping[str, str], location: str | None = None
) -> list[dict[str, str]]:
    dimensions = [{"Name": "Environment", "Value": environment}]
    if location:
        dimensions.append({"Name": "Location", "Value": location})
    for name, value in sorted(labels.items()):
        # A dimension needs a value, and Environment/Location/Metric are ours.
        if value != "" and name not in ("Environment", "Location", "Metric"):
            dimensions.append({"Name": name, "Value": str(value)})
    return dimensions


def _finished(run: RunResult) -> datetime:
    try:
        when = datetime.fromisoformat(run.finished_at.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def validate(request: Mapping[str, Any], *, now: datetime | None = None) -> None:
    """Check one ``PutMetricData`` request (``Namespace``, ``MetricData``) against the limits.

    Raises `ExportError` with one line naming the datum and what is wrong:
    at most 1000 data, 30 dimensions each, names of 1-255 characters
    (dimension values up to 1024), a namespace not starting with ``AWS/``,
    finite values within +-2**360, a known unit, a timestamp at most two
    weeks old and two hours ahead.
    """
    namespace = request.get("Namespace")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= MAX_NAME_CHARS:
        raise ExportError(f"CloudWatch namespace {_shown(namespace)} must have 1-255 characters")
    if not namespace.isascii() or namespace.startswith((":", "AWS/")):
        raise ExportError(
            f"CloudWatch namespace {_shown(namespace)} must be ASCII "
            "and not start with 'AWS/' or ':'"
        )
    data: Sequence[Mapping[str, Any]] = request.get("MetricData", ())
    if len(data) > MAX_METRICS_PER_REQUEST:
        raise ExportError(
            f"CloudWatch PutMetricData takes at most {MAX_METRICS_PER_REQUEST} metrics "
            f"per request, got {len(data)}"
        )
    moment = now or datetime.now(UTC)
    for index, datum in enumerate(data):
        problem = _datum_problem(datum, moment)
        if problem:
            name = _shown(datum.get("MetricName"))
            raise ExportError(f"CloudWatch metric #{index} {name}: {problem}")


def _datum_problem(datum: Mapping[str, Any], now: datetime) -> str:
    """What is wrong with one ``MetricDatum``, or ''."""
    name = datum.get("MetricName")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        return f"MetricName must have 1-{MAX_NAME_CHARS} characters"
    dimensions = datum.get("Dimensions", [])
    if len(dimensions) > MAX_DIMENSIONS:
        return f"{len(dimensions)} dimensions, at most {MAX_DIMENSIONS} allowed"
    problem = next(_dimension_problems(dimensions), "")
    if problem:
        return problem
    value = datum.get("Value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"Value {value!r} is not a number"
    if not math.isfinite(value):
        return f"Value {value} is not finite"
    if value != 0 and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
        return f"Value {value} is outside CloudWatch's range (magnitude 2**-360 to 2**360)"
    unit = datum.get("Unit", "None")
    if unit not in CLOUDWATCH_UNITS:
        return f"Unit {unit!r} is not a CloudWatch unit"
    timestamp = datum.get("Timestamp")
    if isinstance(timestamp, datetime):
        when = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        if when < now - MAX_AGE:
            return f"Timestamp {when.isoformat()} is more than two weeks old"
        if when > now + MAX_AHEAD:
            return f"Timestamp {when.isoformat()} is more than two hours ahead"
    resolution = datum.get("StorageResolution", 60)
    if resolution not in (1, 60):
        return f"StorageResolution {resolution!r} must be 1 or 60"
    return ""


def _dimension_problems(dimensions: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    seen: set[str] = set()
    for dimension in dimensions:
        name, value = dimension.get("Name"), dimension.get("Value")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
            yield f"dimension name {_shown(name)} must have 1-{MAX_NAME_CHARS} characters"
        elif not name.isascii() or name.startswith(":") or not name.strip():
            yield f"dimension name {_shown(name)} must be ASCII, not blank, not start with ':'"
        elif name in seen:
            yield f"dimension {_shown(name)} appears twice"
        elif not isinstance(value, str) or not 1 <= len(value) <= MAX_DIMENSION_VALUE_CHARS:
            yield (
                f"dimension {_shown(name)} value {_shown(value)} must have "
                f"1-{MAX_DIMENSION_VALUE_CHARS} characters"
            )
        seen.add(str(name))


def _shown(value: object, limit: int = 40) -> str:
    """``value`` for a one-line message: its repr, long text cut with its length."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    return repr(value)


def put(
    run: RunResult,
    *,
    namespace: str,
    client: Any,
    names: Mapping[str, str] | None = None,
) -> int:
    """Send ``run``'s `metric_data` to CloudWatch; the number of metrics sent.

    ``client`` is a boto3 CloudWatch client. The data go in requests of at
    most 1000, each validated before the first is sent, so a run that breaks
    a limit sends nothing. A failed request raises `ExportError` (one line);
    the requests before it were delivered.
    """
    data = metric_data(run, names=names)
    batches = [
        {"Namespace": namespace, "MetricData": data[start : start + MAX_METRICS_PER_REQUEST]}
        for start in range(0, len(data), MAX_METRICS_PER_REQUEST)
    ]
    for number, batch in enumerate(batches, start=1):
        try:
            validate(batch)
        except ExportError as exc:
            raise ExportError(f"{exc} (request {number} of {len(batches)})") from None
    # botocore only here: the names and limits above serve `synthetic generate`,
    # which needs no AWS SDK (the [aws] extra).
    from botocore.exceptions import BotoCoreError, ClientError

    sent = 0
    for batch in batches:
        try:
            client.put_metric_data(**batch)
        except (BotoCoreError, ClientError) as exc:
            detail = printable(str(exc), 500)
            raise ExportError(
                f"CloudWatch PutMetricData to {namespace!r} failed after {sent} of "
                f"{len(data)} metrics: {detail}"
            ) from exc
        sent += len(batch["MetricData"])
    return sent
