"""``synthetic report thresholds``: each numeric check's values against its levels.

The quarterly review as one document: per check with a numeric value, the
distribution over the period (p50, p95, p99, max; nearest-rank percentiles)
against its warning and critical levels, how often each was crossed, and a
verdict per level:

- **too tight**: crossed in more than `TIGHT_SHARE` of the rounds;
- **too loose**: never crossed, and no value came within half the limit of it
  (``> 1000`` whose highest value was 120); judged for comparisons (``>``,
  ``>=``, ``<``, ``<=``) with a limit other than 0, not for ranges or lists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthetic.errors import ThresholdTypeError
from synthetic.reports.data import Series, percentile
from synthetic.reports.document import Report, Section, Table
from synthetic.reports.inputs import Inputs
from synthetic.reports.svg import histogram
from synthetic.serve.sparkline import threshold_levels
from synthetic.thresholds import Comparison, Threshold
from synthetic.units import format_value

TIGHT_SHARE = 0.5
LOOSE_GAP = 0.5  # of the limit: the nearest value was farther than this from it
SCHEMA = "synthetic.report.thresholds/v1"


@dataclass(frozen=True)
class Level:
    name: str  # warning | critical
    expression: str
    crossed: int  # values that breach it
    share: float  # crossed / values
    verdict: str  # too tight | too loose | ok | not judged
    advice: str  # one line, or ""

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.name,
            "expression": self.expression,
            "crossed": self.crossed,
            "share": round(self.share, 6),
            "verdict": self.verdict,
            "advice": self.advice,
        }


@dataclass(frozen=True)
class Review:
    series: Series
    values: int
    p50: float
    p95: float
    p99: float
    low: float
    high: float
    levels: tuple[Level, ...]

    @property
    def verdict(self) -> str:
        verdicts = {level.verdict for level in self.levels}
        for worst in ("too tight", "too loose"):
            if worst in verdicts:
                return worst
        return "ok" if "ok" in verdicts else "not judged"


def review(series: Series, warning: Threshold | None, critical: Threshold | None) -> Review | None:
    """The series' distribution against its levels; None without numeric values."""
    values = series.values()
    if not values:
        return None
    levels = tuple(
        judge(name, threshold, values, series.unit)
        for name, threshold in (("warning", warning), ("critical", critical))
        if threshold is not None
    )
    return Review(
        series=series,
        values=len(values),
        p50=_p(values, 0.50),
        p95=_p(values, 0.95),
        p99=_p(values, 0.99),
        low=min(values),
        high=max(values),
        levels=levels,
    )


def crossed(threshold: Threshold, values: Sequence[float]) -> int:
    """How many of ``values`` breach ``threshold`` (a value it cannot compare: none)."""
    count = 0
    for value in values:
        with contextlib.suppress(ThresholdTypeError):
            count += bool(threshold.breached(value))
    return count


def judge(name: str, threshold: Threshold, values: Sequence[float], unit: str | None) -> Level:
    hits = crossed(threshold, values)
    share = hits / len(values)
    text = f"{name} {threshold.text}"
    if share > TIGHT_SHARE:
        return Level(
            name,
            threshold.text,
            hits,
            share,
            "too tight",
            tight_advice(text, threshold, values, share, unit),
        )
    limit = _limit(threshold)
    if limit is None or not isinstance(threshold, Comparison):
        return Level(name, threshold.text, hits, share, "ok" if hits else "not judged", "")
    upward = threshold.op in (">", ">=")
    nearest = max(values) if upward else min(values)
    if hits == 0 and abs(nearest - limit) > LOOSE_GAP * abs(limit):
        word = "highest" if upward else "lowest"
        advice = (
            f"{text} never came near: the {word} value was {format_value(nearest, unit)} "
            f"({nearest / limit:.0%} of the limit)"
        )
        return Level(name, threshold.text, hits, share, "too loose", advice)
    return Level(name, threshold.text, hits, share, "ok", "")


def tight_advice(
    text: str, threshold: Threshold, values: Sequence[float], share: float, unit: str | None
) -> str:
    """``warning > 10 fires 22% of the time; p95 of the value is 14``."""
    downward = isinstance(threshold, Comparison) and threshold.op in ("<", "<=")
    which, at = ("p5", 0.05) if downward else ("p95", 0.95)
    typical = format_value(_p(values, at), unit)
    return f"{text} fires {share:.0%} of the time; {which} of the value is {typical}"


def _limit(threshold: Threshold) -> float | None:
    if isinstance(threshold, Comparison) and not isinstance(threshold.operand, str):
        return float(threshold.operand) or None
    return None


def _p(values: Sequence[float], share: float) -> float:
    found = percentile(values, share)
    assert found is not None
    return found


def thresholds_report(inputs: Inputs) -> Report:
    reviews: list[Review] = []
    for series in inputs.series:
        spec = inputs.spec(series)
        if spec is None or (spec.warning is None and spec.critical is None):
            continue
        found = review(series, spec.warning, spec.critical)
        if found is not None:
            reviews.append(found)
    order = {"too tight": 0, "too loose": 1, "ok": 2, "not judged": 3}
    reviews.sort(key=lambda r: (order[r.verdict], r.series.name))
    rows, figures = [], []
    for r in reviews:
        unit = r.series.unit
        rows.append(
            (
                r.series.name,
                str(r.values),
                *(format_value(v, unit) for v in (r.p50, r.p95, r.p99, r.high)),
                "; ".join(f"{lv.name} {lv.expression}: {lv.share:.1%}" for lv in r.levels),
                r.verdict,
            )
        )
        figures.append(_figure(r))
    advice = [f"- {lv.advice}" for r in reviews for lv in r.levels if lv.advice]
    sections = [
        Section(
            "Checks",
            table=Table(
                ("check", "values", "p50", "p95", "p99", "max", "crossed", "verdict"),
                rows,
                figures,
            ),
            empty="No check with a numeric value and thresholds has history in the period.",
        ),
        Section(
            "To review",
            advice or ["Nothing: every level is crossed sometimes, and not most of the time."],
        ),
    ]
    data = {
        "checks": [
            {
                "check": r.series.check,
                "series": r.series.key,
                "location": r.series.location,
                "unit": r.series.unit,
                "values": r.values,
                "p50": r.p50,
                "p95": r.p95,
                "p99": r.p99,
                "min": r.low,
                "max": r.high,
                "levels": [lv.to_json() for lv in r.levels],
                "verdict": r.verdict,
            }
            for r in reviews
        ]
    }
    return Report(
        kind="thresholds",
        title="Threshold review",
        environment=inputs.environment,
        period="",
        coverage="",
        sections=sections,
        data=data,
    )


def _figure(r: Review) -> str:
    values = r.series.values()
    levels = {lv.name: threshold_levels(lv.expression, r.series.unit) for lv in r.levels}
    return histogram(
        values,
        warning=levels.get("warning", []),
        critical=levels.get("critical", []),
        label=f"{r.series.name}: distribution of {len(values)} values",
    )
