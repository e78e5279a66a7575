"""Bounded reading of Prometheus text: the series cap, and lookups a block at a time
giving what prometheus_client's parse of the whole text gives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from synthetic.errors import MeasurementError, ResponseRejected
from synthetic.measure import prometheus
from synthetic.measure.prometheus import count_series, fetch_samples, parse, select_series
from synthetic.measure.selector import parse_selector

NAMES = ("bff_up", "bff_requests", "bff_latency_seconds", "bff_active")
TYPES = ("gauge", "counter", "histogram", "untyped")


@st.composite
def expositions(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True)):
        kind = draw(st.sampled_from(TYPES))
        if draw(st.booleans()):
            lines.append(f"# HELP {name} Some help.")
        lines.append(f"# TYPE {name} {kind}")
        suffixes = ["_bucket", "_sum", "_count"] if kind == "histogram" else [""]
        suffixes = ["_total"] if kind == "counter" else suffixes
        for i in range(draw(st.integers(0, 12))):
            suffix = draw(st.sampled_from(suffixes))
            le = f',le="{i}"' if suffix == "_bucket" else ""
            lines.append(f'{name}{suffix}{{i="{i}"{le}}} {draw(st.integers(0, 99))}')
            if draw(st.integers(0, 9)) == 0:
                lines.append("")
    return "\n".join(lines) + "\n"


def whole(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample, as prometheus_client reads the whole text at once."""
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


@given(expositions(), st.integers(1, 7))
def test_lookups_a_block_at_a_time_read_what_the_whole_parse_reads(text: str, block: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prometheus, "_BLOCK_LINES", block)
        for name in {sample[0] for sample in whole(text)}:
            found = [(s.name, s.labels, s.value) for s in fetch_samples(text, name)]
            assert found == [sample for sample in whole(text) if sample[0] == name]


@given(expositions())
def test_series_are_counted_without_parsing(text: str) -> None:
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert count_series(text) == len(lines) == len(whole(text))


def test_blank_lines_and_comments_are_not_series() -> None:
    assert count_series("\n" * 1000 + "# HELP x\n  \n#\n") == 0
    assert count_series("a 1\n\n\n\nb 2") == 2


def test_more_series_than_the_cap_is_too_large_before_parsing() -> None:
    text = "".join(f'x{{i="{i}"}} 1\n' for i in range(1001)) + "not valid at all {{{\n"
    with pytest.raises(
        ResponseRejected,
        match=r"^GET /metrics: response too large \(more than max_series = 1000 series\)$",
    ):
        select_series(text, parse_selector("x"), source="GET /metrics", max_series=1000)
    with pytest.raises(ResponseRejected):
        parse(text, source="GET /metrics", max_series=1000)
    with pytest.raises(MeasurementError, match="not valid Prometheus text"):
        parse(text, source="GET /metrics", max_series=1002)


def test_a_selector_matching_too_many_series_is_unknown_not_a_memory_hog() -> None:
    text = "".join(f'x{{i="{i}"}} 1\n' for i in range(prometheus.MAX_SELECTED + 1))
    assert select_series(text, parse_selector('sum(x{i=~"1.*"})'))  # fewer: fine
    with pytest.raises(MeasurementError, match=r"has more than 10000 series matching sum\(x\)"):
        select_series(text, parse_selector("sum(x)"))


def test_a_line_longer_than_the_bound_is_not_parsed() -> None:
    text = "x 1\n" + 'y{a="' + "z" * prometheus.MAX_LINE + '"} 1\n'
    with pytest.raises(MeasurementError, match=r"\(line 2 is longer than 65536 characters\)$"):
        select_series(text, parse_selector("x"), source="GET /metrics")
