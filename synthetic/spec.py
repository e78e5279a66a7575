"""From a pytest item's markers to a `CheckSpec`, validated once at collection."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from synthetic.config import Environment, Runbooks
from synthetic.errors import ConfigError, ThresholdError, excerpt
from synthetic.markers import MARKER_DOCS
from synthetic.results import Severity, metric_key
from synthetic.thresholds import Threshold, parse_threshold
from synthetic.units import parse_duration

_METRIC_KWARGS = frozenset(
    {
        "unit",
        "component",
        "runbook",
        "priority",
        "unreachable",
        "description",
        "sustain",
        "depends_on",
    }
)
# The systems a check reaches through a fixture: when every check reaching
# one finds it unreachable, that is one root-cause alert, not one per check.
TARGET_FIXTURES = {
    "bff": "bff",
    "redis_client": "redis",
    "postgres": "postgres",
    "log_analysis": "logs",  # the log files or the log backend (Loki, CloudWatch, Prometheus)
}
TARGETS = frozenset(TARGET_FIXTURES.values())
_METRIC_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*([.:-][A-Za-z0-9_]+)*$")
_PRIORITY = re.compile(r"^P[1-4]$")
_UNREACHABLE = {
    "critical": Severity.CRITICAL,
    "warning": Severity.WARNING,
    "unknown": Severity.UNKNOWN,
}
DEFAULT_PRIORITY = "P3"


@dataclass(frozen=True)
class CheckSpec:
    """What a check measures and when it alerts, from its markers and the config.

    ``node_id`` is the pytest node id (``checks/check_queues.py::check_whmcs_queue_size``),
    ``metric`` the metric's name (the ``metric`` marker's first argument).
    """

    node_id: str
    metric: str
    unit: str | None
    component: str | None
    runbook: str | None
    priority: str
    warning: Threshold | None
    critical: Threshold | None
    unreachable: Severity = Severity.CRITICAL
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    sustain_s: float = 0.0
    reaches: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """``metric`` with its labels, e.g. ``bullmq.waiting{queue="email"}``."""
        return metric_key(self.metric, self.labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "metric": self.metric,
            "unit": self.unit,
            "component": self.component,
            "warning": self.warning.text if self.warning else None,
            "critical": self.critical.text if self.critical else None,
            "runbook": self.runbook,
            "priority": self.priority,
            "labels": dict(self.labels),
            "description": self.description,
            "sustain_s": self.sustain_s,
            "depends_on": list(self.depends_on),
        }


def is_check(item: pytest.Item) -> bool:
    """A ``check_*`` function, or any test carrying one of our markers."""
    name = getattr(item, "originalname", item.name)
    if name.startswith("check_"):
        return True
    return any(item.get_closest_marker(m) is not None for m in MARKER_DOCS)


def build_spec(
    item: pytest.Item,
    *,
    environment: Environment,
    runbooks: Runbooks,
    config_source: str,
) -> CheckSpec:
    """The item's `CheckSpec`; a `ConfigError` naming the file, function and bad text."""
    where = _location(item)
    if item.get_closest_marker("xfail") is not None:
        raise ConfigError(
            f"{where}: a check cannot be xfail (it would hide a breach); "
            "override its thresholds for the environment instead"
        )
    metric_kwargs: dict[str, Any] = {}
    metric_id: str | None = None
    for marker in item.iter_markers("metric"):  # closest first
        if len(marker.args) > 1:
            raise ConfigError(f"{where}: @pytest.mark.metric takes one positional argument, the id")
        if marker.args and metric_id is None:
            metric_id = marker.args[0]
        unknown = set(marker.kwargs) - _METRIC_KWARGS
        if unknown:
            bad = ", ".join(sorted(unknown))
            raise ConfigError(f"{where}: @pytest.mark.metric: unknown argument(s) {bad}")
        for key, value in marker.kwargs.items():
            metric_kwargs.setdefault(key, value)

    name = getattr(item, "originalname", item.name)
    if metric_id is None:
        metric_id = name.removeprefix("check_").removeprefix("test_")
    if not isinstance(metric_id, str) or not _METRIC_ID.match(metric_id):
        raise ConfigError(f"{where}: @pytest.mark.metric: invalid metric id {excerpt(metric_id)}")

    unit = _optional_str(metric_kwargs.get("unit"), "unit", where)
    priority = _optional_str(metric_kwargs.get("priority"), "priority", where) or DEFAULT_PRIORITY
    if not _PRIORITY.match(priority):
        raise ConfigError(
            f"{where}: @pytest.mark.metric: priority {excerpt(priority)} is not P1..P4"
        )
    unreachable_name = metric_kwargs.get("unreachable", "critical")
    if unreachable_name not in _UNREACHABLE:
        raise ConfigError(
            f"{where}: @pytest.mark.metric: unreachable={excerpt(unreachable_name)} "
            "is not one of critical, warning, unknown"
        )

    sustain_s = _sustain(metric_kwargs.get("sustain"), where)
    reaches = tuple(
        sorted({t for f, t in TARGET_FIXTURES.items() if f in getattr(item, "fixturenames", ())})
    )
    depends_on = tuple(sorted({*reaches, *_depends_on(metric_kwargs.get("depends_on"), where)}))

    thresholds: dict[str, Threshold | None] = {}
    labels = _labels(item)
    # The metric's override, then one for these labels (``bullmq.waiting{queue="email"}``).
    overrides = [
        (key, environment.thresholds[key])
        for key in dict.fromkeys((metric_id, metric_key(metric_id, labels)))
        if key in environment.thresholds
    ]
    for level in ("warning", "critical"):
        level_marker = _closest(item, level)
        expr: str | Callable[[Any], bool] | None = None
        source = f"@pytest.mark.{level}"
        if level_marker is not None:
            if len(level_marker.args) != 1 or level_marker.kwargs:
                raise ConfigError(f"{where}: {source} takes exactly one expression")
            expr = level_marker.args[0]
        set_here = [(k, getattr(o, level)) for k, o in overrides if getattr(o, level) is not None]
        key, overridden = set_here[-1] if set_here else (metric_id, None)
        if overridden is not None:
            source = f'{config_source}: environments.{environment.name}.thresholds."{key}".{level}'
            if overridden is True:
                raise ConfigError(f"{where}: {source}: use an expression, or false to remove it")
            expr = None if overridden is False else overridden
        thresholds[level] = _parse(expr, unit=unit, where=where, source=source)

    if thresholds["warning"] is None and thresholds["critical"] is None:
        raise ConfigError(
            f"{where}: a check needs a @pytest.mark.critical or @pytest.mark.warning threshold"
        )

    return CheckSpec(
        node_id=item.nodeid,
        metric=metric_id,
        unit=unit,
        component=_optional_str(metric_kwargs.get("component"), "component", where),
        runbook=runbooks.resolve(_optional_str(metric_kwargs.get("runbook"), "runbook", where)),
        priority=priority,
        warning=thresholds["warning"],
        critical=thresholds["critical"],
        unreachable=_UNREACHABLE[unreachable_name],
        labels=labels,
        description=_optional_str(metric_kwargs.get("description"), "description", where)
        or _first_doc_line(item),
        sustain_s=sustain_s,
        reaches=reaches,
        depends_on=depends_on,
    )


def _closest(item: pytest.Item, name: str) -> pytest.Mark | None:
    """The marker ``name`` of the item's parameter (``pytest.param(..., marks=...)``),
    else the closest: one parameter's thresholds win over the function's."""
    marks: list[pytest.Mark] = list(getattr(getattr(item, "callspec", None), "marks", ()))
    for mark in reversed(marks):
        if mark.name == name:
            return mark
    return item.get_closest_marker(name)


def _sustain(value: Any, where: str) -> float:
    if value is None:
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: @pytest.mark.metric: sustain: {exc}") from None


def _depends_on(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(n in TARGETS for n in names):
        raise ConfigError(
            f"{where}: @pytest.mark.metric: depends_on must name {', '.join(sorted(TARGETS))} "
            f"(got {excerpt(value)})"
        )
    return tuple(names)


def _parse(
    expr: str | Callable[[Any], bool] | None, *, unit: str | None, where: str, source: str
) -> Threshold | None:
    if expr is None:
        return None
    if not (isinstance(expr, str) or callable(expr)):
        raise ConfigError(
            f"{where}: {source}: expected an expression or a callable, got {excerpt(expr)}"
        )
    try:
        return parse_threshold(expr, unit=unit)
    except ThresholdError as exc:
        raise ThresholdError(f"{where}: {source}: {exc}", text=exc.text) from None


def _optional_str(value: Any, key: str, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{where}: @pytest.mark.metric: {key} must be a string, got {excerpt(value)}")


def _labels(item: pytest.Item) -> dict[str, str]:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return {}
    return {
        name: str(value)
        for name, value in callspec.params.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }


def _first_doc_line(item: pytest.Item) -> str | None:
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    if not doc:
        return None
    return doc.strip().splitlines()[0].strip() or None


def _location(item: pytest.Item) -> str:
    path, _, _ = item.location
    name = getattr(item, "originalname", item.name)
    cls = getattr(item, "cls", None)
    return f"{path}::{cls.__name__}::{name}" if cls is not None else f"{path}::{name}"
