"""Reading values out of Prometheus text exposition (format 0.0.4).

Parsing is `prometheus_client.parser.text_string_to_metric_families`, the
reference client's own parser; this module only adds what a check needs on
top of it: the whole text is parsed up front (the parser is lazy, so a
truncated exposition would otherwise go unnoticed), samples are looked up
by their sample name and labels or by a PromQL-style selector
(`synthetic.measure.selector`), and every failure is a `MeasurementError` whose
one-line reason names the metric::

    text = bff.snapshot(metrics_url).text
    gauge_value(text, "bff_http_active_connections")                  # 40.0
    gauge_value(text, "bff_http_requests_total", {"route": "/health"})
    series_value(text, parse_selector('sum(bff_http_active_connections{server=~"public|admin"})'))

Lookups use the *sample* name as exposed (``x_total`` for a counter,
``x_bucket`` for a histogram bucket), not the family name the parser
normalises counters to.

Bounded: a text of more than ``max_series`` series (counted before parsing,
default `DEFAULT_MAX_SERIES`) is `ResponseRejected`, too large. Lookups in a
text parse it a block of lines at a time and keep only what they need, so
memory does not grow with the number of series; a parse error's text (which
is the target's) is cut and made printable.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from synthetic.errors import MeasurementError, ResponseRejected
from synthetic.limits import DEFAULT_MAX_SERIES
from synthetic.measure.selector import SeriesSelector, format_series
from synthetic.text import printable

__all__ = [
    "count_series",
    "fetch_samples",
    "gauge_value",
    "parse",
    "select_series",
    "series_value",
]

_MAX_SHOWN = 80
_SERIES_SHOWN = 3
_NAMES_SHOWN = 5
_SAMPLE_LINE = re.compile(r"^[ \t]*[^#\s]", re.MULTILINE)
# Lines parsed at once by a lookup: what a block's samples cost, not the text's.
_BLOCK_LINES = 5000
MAX_LINE = 65_536
"""Characters of one line of the text."""
MAX_SELECTED = 10_000
"""Series one selector may match (an aggregation reads them all)."""


def parse(
    text: str, *, source: str = "metrics text", max_series: int = DEFAULT_MAX_SERIES
) -> list[Metric]:
    """Every metric family of ``text``; a `MeasurementError` when it does not parse.

    ``source`` (e.g. the URL it came from) names the text in the reason.
    `ResponseRejected` when it has more than ``max_series`` series.
    """
    _check_series(text, source, max_series)
    return _families(text, source)


def count_series(text: str) -> int:
    """The sample lines of ``text``: lines that are neither comments nor blank.

    Counted without splitting the text or keeping the lines: the memory does not
    grow with them (the text itself is bounded by ``max_body_bytes``).
    """
    return sum(1 for _ in _SAMPLE_LINE.finditer(text))


def _check_series(text: str, source: str, max_series: int) -> None:
    if count_series(text) > max_series:
        raise ResponseRejected(
            f"{source}: response too large (more than max_series = {max_series} series)",
            url=source,
        )


def _families(text: str, source: str) -> list[Metric]:
    try:
        return list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        detail = printable(str(exc), _MAX_SHOWN)
        raise MeasurementError(
            f"{source} is not valid Prometheus text format ({detail or type(exc).__name__})"
        ) from None


def _blocks(text: str, source: str) -> Iterator[str]:
    """``text`` in blocks of `_BLOCK_LINES` lines; a block that starts inside a
    family starts with that family's ``# TYPE`` line, so it parses the same.
    A line longer than `MAX_LINE` is a `MeasurementError` (the parser would
    hold four bytes a character of it)."""
    start = 0
    carried = ""
    lines = 0
    while start < len(text):
        end = start
        for _ in range(_BLOCK_LINES):
            newline = text.find("\n", end)
            line_end = len(text) if newline < 0 else newline + 1
            lines += 1
            if line_end - end > MAX_LINE:
                raise MeasurementError(
                    f"{source} is not valid Prometheus text format "
                    f"(line {lines} is longer than {MAX_LINE} characters)"
                )
            end = line_end
            if newline < 0:
                break
        block = text[start:end]
        yield carried + block
        last_type = block.rfind("# TYPE ")
        if last_type >= 0:
            line_end = block.find("\n", last_type)
            carried = block[last_type : len(block) if line_end < 0 else line_end + 1]
        start = end


def _samples(text: str, source: str, max_series: int) -> Iterator[Sample]:
    """Every sample of ``text``, parsed a block at a time (the whole text is checked)."""
    _check_series(text, source, max_series)
    for block in _blocks(text, source):
        for family in _families(block, source):
            yield from family.samples


def fetch_samples(
    exposition: str | Sequence[Metric],
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    source: str = "metrics text",
    max_series: int = DEFAULT_MAX_SERIES,
) -> list[Sample]:
    """The samples named ``name`` whose labels include every pair of ``labels``.

    ``exposition`` is the text or what `parse` returned. An empty list when
    nothing matches; a `MeasurementError` when the text does not parse.
    """
    wanted = dict(labels or {})
    return [
        sample
        for sample in _all_samples(exposition, source, max_series)
        if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items())
    ]


def _all_samples(
    exposition: str | Sequence[Metric], source: str, max_series: int
) -> Iterator[Sample]:
    if isinstance(exposition, str):
        return _samples(exposition, source, max_series)
    return (sample for family in exposition for sample in family.samples)


def select_series(
    exposition: str | Sequence[Metric],
    selector: SeriesSelector,
    *,
    source: str = "metrics text",
    max_series: int = DEFAULT_MAX_SERIES,
) -> list[Sample]:
    """The samples ``selector`` matches: one, or several when it aggregates.

    Raises `MeasurementError`, in one line naming the selector, when the
    text does not parse; when nothing matches (with the series of that name
    that do exist, or names that look close); when several match and the
    selector does not aggregate (with some of them); when a value is NaN
    or infinite.
    """
    # Only what an answer or a reason needs is kept: a few samples to show,
    # counts, the names (for "similar"), and the matches an aggregation reads.
    keep = MAX_SELECTED if selector.aggregation is not None else _SERIES_SHOWN
    found: list[Sample] = []
    matched = 0
    same_name: list[Sample] = []
    same_count = 0
    names: dict[str, None] = {}
    for sample in _all_samples(exposition, source, max_series):
        names[sample.name] = None
        if sample.name != selector.name:
            continue
        same_count += 1
        if len(same_name) < _SERIES_SHOWN:
            same_name.append(sample)
        if selector.matches(sample.name, sample.labels):
            matched += 1
            if matched > MAX_SELECTED:
                raise MeasurementError(
                    f"{source} has more than {MAX_SELECTED} series matching {selector}; "
                    "labels are needed to choose fewer"
                )
            if len(found) < keep:
                found.append(sample)
    if not found:
        raise MeasurementError(
            _nothing_matches(selector, same_name, same_count, list(names), source)
        )
    if matched > 1 and selector.aggregation is None:
        raise MeasurementError(
            f"{source} has {matched} series matching {selector} ({_shown(found, matched)}); "
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
    max_series: int = DEFAULT_MAX_SERIES,
) -> float:
    """The value ``selector`` selects: its one series, or its aggregation of several."""
    found = select_series(exposition, selector, source=source, max_series=max_series)
    return selector.aggregate([float(sample.value) for sample in found])


def _shown(samples: Sequence[Sample], total: int, *, names: bool = True) -> str:
    shown = ", ".join(
        format_series(s.name if names else "", s.labels) or "{}" for s in samples[:_SERIES_SHOWN]
    )
    more = total - _SERIES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _nothing_matches(
    selector: SeriesSelector,
    same_name: Sequence[Sample],
    same_count: int,
    names: list[str],
    source: str,
) -> str:
    """No series matches: say which of that name exist, or which names look close."""
    if same_name:
        labels = _shown(same_name, same_count, names=False)
        return f"{source} has no series matching {selector} ({selector.name} has: {labels})"
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
    max_series: int = DEFAULT_MAX_SERIES,
) -> float:
    """The value of the one series ``name`` whose labels include every pair of ``labels``.

    `series_value` of ``name{k="v",...}``: a `MeasurementError`, naming the
    metric, when the text does not parse, when no series matches, when
    several do (give ``labels`` to pick one), or when the value is NaN or
    infinite.
    """
    return series_value(
        exposition, SeriesSelector.equal(name, labels), source=source, max_series=max_series
    )
