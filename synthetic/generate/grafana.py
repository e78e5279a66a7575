"""Target ``grafana``: the catalogue's dashboards, built with Grafana's Foundation SDK.

The dashboards of ``[generate] grafana_dashboards``, with their panels (the
Customer Portal's config has the guide's: Overview, Queues, Database), plus a
Checks dashboard with one panel per metric those panels do not show, a row
per component: every check of the catalogue is on a dashboard.

A check is one query (``refId`` A, B, ...) of ``synthetic_check_value`` in the
unit of its marker, with its thresholds as the panel's (warning yellow,
critical red; a check whose unit or thresholds differ from the panel's first
gets an override by query). A check that Prometheus has no value for (string
thresholds) shows ``synthetic_check_severity`` as OK / WARNING / CRITICAL /
UNKNOWN. Request rate and error log lines come from Loki, the slowest queries
from PostgreSQL's ``pg_stat_statements``; each dashboard has a datasource
variable for each source it uses (and ``log_stream``, the Loki stream selector).
"""

from __future__ import annotations

import itertools
import json
import string
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from synthetic.generate.conditions import Condition, numeric
from synthetic.generate.model import Artifact, Catalogue, Generated
from synthetic.generate.prometheus_rules import SEVERITY, VALUE, selector
from synthetic.generate.settings import PanelModel
from synthetic.spec import CheckSpec

with warnings.catch_warnings():
    # The SDK warns as its modules load: it prefers its v2 schema. The classic
    # dashboard JSON is what every Grafana version imports, provisions and serves.
    warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import gauge, stat, table, timeseries
    from grafana_foundation_sdk.builders.dashboard import (
        Dashboard,
        DatasourceVariable,
        Row,
        TextBoxVariable,
        ThresholdsConfig,
    )
    from grafana_foundation_sdk.builders.loki import Dataquery as LokiQuery
    from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.cog import variants as cogvariants
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.runtime import UnknownDataquery
    from grafana_foundation_sdk.models import dashboard as model
    from grafana_foundation_sdk.models.common import DataSourceRef, GraphThresholdsStyleMode

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${prometheus}")
LOKI = DataSourceRef(type_val="loki", uid="${loki}")
POSTGRES = DataSourceRef(type_val="grafana-postgresql-datasource", uid="${postgres}")
GREEN, YELLOW, RED, PURPLE = "green", "yellow", "red", "purple"
SEVERITY_NAMES = (
    ("0", "OK", GREEN),
    ("1", "WARNING", YELLOW),
    ("2", "CRITICAL", RED),
    ("3", "UNKNOWN", PURPLE),
)
SLOWEST_QUERIES_SQL = """\
SELECT left(query, 200) AS query, calls,
       round(mean_exec_time::numeric, 1) AS mean_ms,
       round(total_exec_time::numeric, 1) AS total_ms
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY mean_exec_time DESC
LIMIT 20"""
UNITS = {
    "ns": "ns", "us": "µs", "\u00b5s": "µs", "\u03bcs": "µs", "ms": "ms",
    "s": "s", "sec": "s", "second": "s", "seconds": "s",
    "min": "m", "minute": "m", "minutes": "m", "h": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "B": "decbytes", "byte": "decbytes", "bytes": "decbytes", "kB": "deckbytes",
    "KB": "deckbytes", "MB": "decmbytes", "GB": "decgbytes", "TB": "dectbytes",
    "KiB": "kbytes", "MiB": "mbytes", "GiB": "gbytes", "TiB": "tbytes",
    "%": "percent", "percent": "percent", "ratio": "percentunit",
    "/s": "ops", "/sec": "ops", "/min": "opm",
}  # fmt: skip


def grafana_unit(unit: str | None) -> str:
    if unit is None:
        return "short"
    return UNITS.get(unit, f"suffix: {unit}")


def shows_value(spec: CheckSpec) -> bool:
    """Whether Prometheus has the check's value (a numeric threshold), not only its severity."""
    return any(numeric(t) is not None for t in (spec.warning, spec.critical) if t is not None)


def color_steps(spec: CheckSpec) -> list[dict[str, Any]]:
    """Threshold steps from the check's thresholds: red where critical holds, yellow
    where only warning does, green elsewhere. Grafana colours a value by the last
    step at or below it, so a value exactly at a strict bound takes the next colour."""
    critical = numeric(spec.critical) or Condition(())
    warning = numeric(spec.warning) or Condition(())
    numbers = sorted({*critical.numbers(), *warning.numbers()})

    def colour(value: float) -> str:
        return RED if critical.holds(value) else YELLOW if warning.holds(value) else GREEN

    if not numbers:
        return [{"color": GREEN, "value": None}]
    samples = [numbers[0] - max(1.0, abs(numbers[0]))]
    samples += [(a + b) / 2 for a, b in itertools.pairwise(numbers)]
    samples.append(numbers[-1] + max(1.0, abs(numbers[-1])))
    steps: list[dict[str, Any]] = [{"color": colour(samples[0]), "value": None}]
    for number, sample in zip(numbers, samples[1:], strict=True):
        if colour(sample) != steps[-1]["color"]:
            steps.append({"color": colour(sample), "value": number})
    return steps


def _ref_ids() -> Iterator[str]:
    for size in itertools.count(1):
        for letters in itertools.product(string.ascii_uppercase, repeat=size):
            yield "".join(letters)


def _thresholds(steps: list[dict[str, Any]]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=s["value"], color=s["color"]) for s in steps])
    )


def _severity_mappings() -> list[model.ValueMapping]:
    options = {
        code: model.ValueMappingResult(text=text, color=color, index=index)
        for index, (code, text, color) in enumerate(SEVERITY_NAMES)
    }
    return [model.ValueMap(options=options)]


def check_panel(
    kind: str, title: str, specs: Sequence[CheckSpec], environment: str, description: str
) -> Any:
    """A Prometheus panel with one query per check."""
    builders: dict[str, Any] = {
        "timeseries": timeseries.Panel,
        "stat": stat.Panel,
        "gauge": gauge.Panel,
    }
    panel = builders[kind]().title(title).datasource(PROMETHEUS)
    if description:
        panel.description(description)
    by_value = shows_value(specs[0])
    for ref, spec in zip(_ref_ids(), specs, strict=False):
        series = selector(VALUE if by_value else SEVERITY, spec, environment)
        panel.with_target(
            PrometheusQuery().expr(series).legend_format(spec.display_name).ref_id(ref)
        )
    if not by_value:
        steps: list[dict[str, Any]] = [
            {"color": GREEN, "value": None},
            {"color": YELLOW, "value": 1.0},
        ]
        steps += [{"color": RED, "value": 2.0}, {"color": PURPLE, "value": 3.0}]
        panel.unit("none").mappings(_severity_mappings()).thresholds(_thresholds(steps))
        return panel
    first = specs[0]
    panel.unit(grafana_unit(first.unit)).thresholds(_thresholds(color_steps(first)))
    if first.unit in ("%", "percent") and kind == "gauge":
        panel.min(0).max(100)
    if kind == "timeseries":
        panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)
        )
    for ref, spec in zip(_ref_ids(), specs, strict=False):
        properties = []
        if spec.unit != first.unit:
            properties.append(
                model.DynamicConfigValue(id_val="unit", value=grafana_unit(spec.unit))
            )
        steps = color_steps(spec)
        if steps != color_steps(first):
            value = {"mode": "absolute", "steps": steps}
            properties.append(model.DynamicConfigValue(id_val="thresholds", value=value))
        if properties:
            panel.override_by_query(ref, properties)
    return panel


class _RawQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """A query the SDK has no model for (PostgreSQL), kept as the SDK keeps unknown ones."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def build(self) -> cogvariants.Dataquery:
        return UnknownDataquery(self.data)


def source_panel(panel: PanelModel) -> Any:
    selector_var = "{${log_stream}}"
    if panel.kind == "loki-rate":
        query = f'sum(rate({selector_var} |= "statusCode" [$__rate_interval]))'
        built = timeseries.Panel().datasource(LOKI).unit("reqps")
        return built.with_target(LokiQuery().expr(query).legend_format("requests/s").ref_id("A"))
    if panel.kind == "loki-errors":
        query = f"sum(count_over_time({selector_var} | json | level >= 50 [$__interval]))"
        built = timeseries.Panel().datasource(LOKI).unit("short")
        return built.with_target(LokiQuery().expr(query).legend_format("errors").ref_id("A"))
    sql = {
        "refId": "A",
        "datasource": POSTGRES.to_json(),
        "editorMode": "code",
        "format": "table",
        "rawQuery": True,
        "rawSql": SLOWEST_QUERIES_SQL,
    }
    return table.Panel().datasource(POSTGRES).with_target(_RawQuery(sql))


def _datasource_variables(sources: set[str], log_stream: str) -> Iterator[Any]:
    for name, kind, label in (
        ("prometheus", "prometheus", "Prometheus"),
        ("loki", "loki", "Loki"),
        ("postgres", "grafana-postgresql-datasource", "PostgreSQL"),
    ):
        if name in sources:
            yield DatasourceVariable(name).type(kind).label(label)
    if "loki" in sources:
        yield (
            TextBoxVariable("log_stream")
            .label("Loki stream selector")
            .default_value(log_stream)
            .current(model.VariableOption(text=log_stream, value=log_stream, selected=True))
        )


class _Layout:
    """Panels two to a row of the grid, ids in order."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0

    def place(self, panel: Any) -> Any:
        panel.id(self.next_id).grid_pos(model.GridPos(h=8, w=12, x=self.x, y=self.y))
        self.next_id += 1
        self.x = 12 - self.x
        if self.x == 0:
            self.y += 8
        return panel

    def row(self, title: str) -> Row:
        if self.x:
            self.x, self.y = 0, self.y + 8
        row = Row(title).id(self.next_id).grid_pos(model.GridPos(h=1, w=24, x=0, y=self.y))
        self.next_id += 1
        self.y += 1
        return row


def dashboard(
    catalogue: Catalogue,
    uid: str,
    title: str,
    panels: list[tuple[str | None, Any]],
    sources: set[str],
) -> dict[str, Any]:
    board = (
        Dashboard(f"Synthetic / {title} ({catalogue.environment})")
        .uid(f"synthetic-{catalogue.environment}-{uid}")
        .description(catalogue.header)
        .tags(["synthetic", catalogue.environment])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
    )
    for variable in _datasource_variables(sources, catalogue.presentation.log_stream):
        board.with_variable(variable)
    layout = _Layout()
    current_row: str | None = None
    for row, panel in panels:
        if row is not None and row != current_row:
            board.with_row(layout.row(row))
            current_row = row
        board.with_panel(layout.place(panel))
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return encoded


def dashboards(catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    env = catalogue.environment
    by_metric: dict[str, list[CheckSpec]] = {}
    for spec in catalogue.checks:
        by_metric.setdefault(spec.metric, []).append(spec)
    shown: set[str] = set()
    found: dict[str, dict[str, Any]] = {}
    for chosen in catalogue.presentation.grafana_dashboards:
        uid, title = chosen.uid, chosen.title
        panels: list[tuple[str | None, Any]] = []
        sources: set[str] = set()
        for guide in chosen.panels:
            if guide.metrics:
                specs = [s for m in guide.metrics for s in by_metric.get(m, [])]
                if not specs:
                    continue
                shown.update(guide.metrics)
                by_kind = _split_by_display(specs)
                for part in by_kind:
                    panel = check_panel(guide.kind, guide.title, part, env, guide.description)
                    panels.append((None, panel))
                sources.add("prometheus")
            else:
                panels.append(
                    (None, source_panel(guide).title(guide.title).description(guide.description))
                )
                sources.add({"slowest-queries": "postgres"}.get(guide.kind, "loki"))
        found[uid] = dashboard(catalogue, uid, title, panels, sources)
    rest = [(m, specs) for m, specs in by_metric.items() if m not in shown]
    rest.sort(key=lambda item: (item[1][0].component or "", item[0]))
    panels = []
    for metric, specs in rest:
        row = specs[0].component or "other"
        for part in _split_by_display(specs):
            kind = "timeseries" if shows_value(part[0]) else "stat"
            description = part[0].description or ""
            panels.append((row, check_panel(kind, metric, part, env, description)))
    found["checks"] = dashboard(catalogue, "checks", "Checks", panels, {"prometheus"})
    return found


def _split_by_display(specs: list[CheckSpec]) -> list[list[CheckSpec]]:
    """Checks shown by value apart from checks shown by severity (one panel cannot do both)."""
    by_value = [s for s in specs if shows_value(s)]
    by_severity = [s for s in specs if not shows_value(s)]
    return [part for part in (by_value, by_severity) if part]


def generate(catalogue: Catalogue) -> Generated:
    generated = Generated()
    for uid, board in dashboards(catalogue).items():
        text = json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        generated.artifacts.append(Artifact(f"grafana/{uid}.json", text))
    generated.note(
        "shown as OK / WARNING / CRITICAL / UNKNOWN (synthetic_check_severity): Prometheus "
        "has no value for a string threshold",
        [s for s in catalogue.checks if not shows_value(s)],
    )
    generated.note(
        "no colour band for an equality or list threshold (a single number)",
        [
            s
            for s in catalogue.checks
            if shows_value(s) and len(color_steps(s)) == 1 and (s.warning or s.critical)
        ],
    )
    return generated


def generate_with(catalogue: Catalogue, options: Any) -> Generated:
    return generate(catalogue)
