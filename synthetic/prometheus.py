"""Reading values out of Prometheus text exposition (format 0.0.4).

Parsing is `prometheus_client.parser.text_string_to_metric_families`, the
reference client's own parser; this module only adds what a check needs on
top of it: the whole text is parsed up front (the parser is lazy, so a
truncated exposition would otherwise go unnoticed), samples are looked up
by their sample name and labels or by a PromQL-style selector
(`synthetic.selector`), and every failure is a `MeasurementError` whose
one-line reason names the metric::

    text = bff.snapshot(metrics_url).text
    gauge_value(text, "bff_http_active_connections")                  # 40.0
    gauge_value(text, "bff_http_requests_total", {"route": "/health"})
    series_value(text, parse_selector('sum(bff_http_active_connections{server=~"public|admin"})'))

Lookups use the *sample* name as exposed (``x_total`` for a counter,
``x_bucket`` for a histogram bucket), not the family name the parser
normalises counters to.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from synthetic.errors import MeasurementError
from synthetic.selector import SeriesSelector, format_series

__all__ = ["fetch_samples", "gauge_value", "parse", "select_series", "series_value"]

_MAX_SHOWN = 80
_SERIES_SHOWN = 3
_NAMES_SHOWN = 5


def parse(text: str, *, source: str = "metrics text") -> list[Metric]:
    """Every metric family of ``text``; a `MeasurementError` when it does not parse.

    ``source`` (e.g. the URL it came from) names the text in the reason.
    """
    try:
        return list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        detail = " ".join(str(exc).split())
        if len(detail) > _MAX_SHOWN:
            detail = detail[: _MAX_SHOWN - 1] + "…"
        raise MeasurementError(
            f"{source} is not valid Prometheus text format ({detail or type(exc).__name__})"
        ) from None


def fetch_samples(
    exposition: str | Sequence[Metric],
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    source: str = "metrics text",
) -> list[Sample]:
    """The samples named ``name`` whose labels include every pair of ``labels``.

    ``exposition`` is the text or what `parse` returned. An empty list when
    nothing matches; a `MeasurementError` when the text does not parse.
    """
    families = parse(exposition, source=source) if isinstance(exposition, str) else exposition
    wanted = dict(labels or {})
    return [
        sample
        for family in families
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items())
    ]


def select_series(
    exposition: str | Sequence[Metric],
    selector: SeriesSelector,
    *,
    source: str = "metrics text",
) -> list[Sample]:
    """The samples ``selector`` matches: one, or several when it aggregates.

    Raises `MeasurementError`, in one line naming the selector, when the
    text does not parse; when nothing matches (with the series of that name
    that do exist, or names that look close); when several match and the
    selector does not aggregate (with some of them); when a value is NaN
    or infinite.
    """
    families = parse(exposition, source=source) if isinstance(exposition, str) else exposition
    samples = [sample for family in families for sample in family.samples]
    found = [sample for sample in samples if selector.matches(sample.name, sample.labels)]
    if not found:
        raise MeasurementError(_nothing_matches(selector, samples, source))
    if len(found) > 1 and selector.aggregation is None:
        raise MeasurementError(
            f"{source} has {len(found)} series matching {selector} ({_shown(found)}); "
            f"labels are needed to choose one, or an aggregation such as sum({selector})"
        )
    for sample in found:
        value = float(sample.value)
        if not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
            raise MeasurementError(
                f"{source}: {format_series(sample.name, sample.labels)} is {shown}"
            )
    return found


def series_value(
    exposition: str | Sequence[Metric],
    selector: SeriesSelector,
    *,
    source: str = "metrics text",
) -> float:
    """The value ``selector`` selects: its one series, or its aggregation of several."""
    found = select_series(exposition, selector, source=source)
    return selector.aggregate([float(sample.value) for sample in found])


def _shown(samples: Sequence[Sample], *, names: bool = True) -> str:
    shown = ", ".join(
        format_series(s.name if names else "", s.labels) or "{}" for s in samples[:_SERIES_SHOWN]
    )
    more = len(samples) - _SERIES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _nothing_matches(selector: SeriesSelector, samples: Sequence[Sample], source: str) -> str:
    """No series matches: say which of that name exist, or which names look close."""
    same_name = [sample for sample in samples if sample.name == selector.name]
    if same_name:
        labels = _shown(same_name, names=False)
        return f"{source} has no series matching {selector} ({selector.name} has: {labels})"
    names = list(dict.fromkeys(sample.name for sample in samples))
    stem = selector.name.rsplit("_", 1)[0] + "_"
    close = difflib.get_close_matches(selector.name, names, n=_NAMES_SHOWN, cutoff=0.75)
    close += [name for name in names if name.startswith(stem) and name not in close]
    hint = f" (similar: {', '.join(close[:_NAMES_SHOWN])})" if close else ""
    return f"{source} has no metric {selector.name}{hint}"


def gauge_value(
    exposition: str | Sequence[Metric],
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    source: str = "metrics text",
) -> float:
    """The value of the one series ``name`` whose labels include every pair of ``labels``.

    `series_value` of ``name{k="v",...}``: a `MeasurementError`, naming the
    metric, when the text does not parse, when no series matches, when
    several do (give ``labels`` to pick one), or when the value is NaN or
    infinite.
    """
    return series_value(exposition, SeriesSelector.equal(name, labels), source=source)
