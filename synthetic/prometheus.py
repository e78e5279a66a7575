"""Reading values out of Prometheus text exposition (format 0.0.4).

Parsing is `prometheus_client.parser.text_string_to_metric_families`, the
reference client's own parser; this module only adds what a check needs on
top of it: the whole text is parsed up front (the parser is lazy, so a
truncated exposition would otherwise go unnoticed), samples are looked up
by their sample name and labels, and every failure is a `MeasurementError`
whose one-line reason names the metric::

    text = bff.snapshot(metrics_url).text
    gauge_value(text, "bff_http_active_connections")                  # 40.0
    gauge_value(text, "bff_http_requests_total", {"route": "/health"})

Lookups use the *sample* name as exposed (``x_total`` for a counter,
``x_bucket`` for a histogram bucket), not the family name the parser
normalises counters to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from synthetic.errors import MeasurementError

__all__ = ["fetch_samples", "gauge_value", "parse"]

_MAX_SHOWN = 80


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


def _series(name: str, labels: Mapping[str, str]) -> str:
    """``name{a="1",b="2"}`` as the exposition writes it."""
    if not labels:
        return name
    pairs = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{name}{{{pairs}}}"


def gauge_value(
    exposition: str | Sequence[Metric],
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    source: str = "metrics text",
) -> float:
    """The value of the one series ``name`` (filtered by ``labels``).

    Raises `MeasurementError`, naming the metric, when the text does not
    parse, when no series matches, when several do (give ``labels`` to pick
    one), or when the value is NaN or infinite.
    """
    wanted = _series(name, labels or {})
    found = fetch_samples(exposition, name, labels, source=source)
    if not found:
        raise MeasurementError(f"{source} has no metric {wanted}")
    if len(found) > 1:
        shown = ", ".join(_series(s.name, s.labels) for s in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise MeasurementError(
            f"{source} has {len(found)} series of {wanted} ({shown}{more}); "
            "labels are needed to choose one"
        )
    sample = found[0]
    value = float(sample.value)
    if not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        raise MeasurementError(f"{source}: {_series(sample.name, sample.labels)} is {shown}")
    return value
