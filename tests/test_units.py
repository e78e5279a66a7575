"""synthetic.units: parse quantities, convert between units, format values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthetic.errors import UnitError
from synthetic.units import convert, format_value, known_unit, parse_quantity, unit_kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2s", (2.0, "s")),
        ("2 s", (2.0, "s")),
        ("500ms", (500.0, "ms")),
        ("80%", (80.0, "%")),
        ("80 %", (80.0, "%")),
        ("1GiB", (1.0, "GiB")),
        ("100/min", (100.0, "/min")),
        ("57 requests", (57.0, "requests")),
        ("3 req/s", (3.0, "req/s")),
        ("2\u00b5s", (2.0, "\u00b5s")),
        ("57", (57.0, None)),
        ("  57  ", (57.0, None)),
        ("-3", (-3.0, None)),
        ("+3", (3.0, None)),
        ("0.25", (0.25, None)),
        (".5", (0.5, None)),
        ("5.", (5.0, None)),
        ("1e3", (1000.0, None)),
        ("1E-3s", (0.001, "s")),
        ("-2.5e+2 ms", (-250.0, "ms")),
    ],
)
def test_parse_quantity(text: str, expected: tuple[float, str | None]) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "s", "ms 2", "2 s s", "--2", "2..5", "e5", "2%%", "2 /", "nan", "-inf",
     "Infinity", "1e999", "2,5", "2 s\n3", "5 2"],
)  # fmt: skip
def test_parse_quantity_errors_name_the_text(text: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_quantity(text)
    message = str(info.value)
    if len(text) <= 80:  # longer, it is cut to 80 characters
        assert repr(text) in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "from_unit", "to_unit", "expected"),
    [
        # same unit, no unit, bare numbers
        (5, None, None, 5),
        (5, None, "ms", 5),
        (5, None, "requests", 5),
        (5, "ms", "ms", 5),
        (5, "requests", "requests", 5),
        # time
        (2, "s", "ms", 2000),
        (500, "ms", "s", 0.5),
        (1, "min", "s", 60),
        (1.5, "h", "min", 90),
        (1, "d", "h", 24),
        (1, "ms", "us", 1000),
        (1, "\u00b5s", "ns", 1000),
        (1, "\u03bcs", "us", 1),
        (3, "sec", "s", 3),
        (2, "seconds", "ms", 2000),
        (2, "minutes", "s", 120),
        (1, "hour", "s", 3600),
        (1, "days", "h", 24),
        # data
        (1, "GiB", "B", 1024**3),
        (1, "GiB", "bytes", 1024**3),
        (1, "GB", "B", 10**9),
        (2, "KiB", "B", 2048),
        (1, "kB", "KB", 1),
        (1, "TiB", "GiB", 1024),
        (1500, "MB", "GB", 1.5),
        (1, "MiB", "KiB", 1024),
        (1, "TB", "MB", 10**6),
        # ratio
        (80, "%", "ratio", 0.8),
        (0.25, "ratio", "%", 25),
        (5, "percent", "%", 5),
        # frequency
        (100, "/min", "/s", 100 / 60),
        (2, "/s", "/min", 120),
        (120, "/h", "/min", 2),
        (1, "/sec", "/s", 1),
    ],
)
def test_convert(value: float, from_unit: str | None, to_unit: str | None, expected: float) -> None:
    assert convert(value, from_unit, to_unit) == pytest.approx(expected, rel=1e-15)


def test_convert_is_exact_where_decimal_allows() -> None:
    assert convert(2, "s", "ms") == 2000.0
    assert convert(80, "%", "ratio") == 0.8
    assert convert(0.3, "s", "ms") == 300.0  # not 300.00000000000006
    assert convert(100, "/min", "/s") == 100 / 60


def test_convert_keeps_non_finite_values() -> None:
    assert convert(math.inf, "s", "ms") == math.inf
    assert math.isnan(convert(math.nan, "s", "ms"))


@pytest.mark.parametrize(
    ("from_unit", "to_unit", "named"),
    [
        ("s", "B", ("'s'", "'B'", "time", "data")),
        ("%", "ms", ("'%'", "'ms'", "ratio", "time")),
        ("/min", "s", ("'/min'", "'s'", "frequency", "time")),
        ("requests", "jobs", ("'requests'", "'jobs'")),
        ("requests", "s", ("'requests'", "'s'")),
        ("s", "requests", ("'s'", "'requests'")),
        ("mb", "MB", ("'mb'", "'MB'")),  # unit names are case-sensitive
    ],
)
def test_convert_errors_name_both_units(
    from_unit: str, to_unit: str, named: tuple[str, ...]
) -> None:
    with pytest.raises(UnitError) as info:
        convert(2, from_unit, to_unit)
    message = str(info.value)
    for part in named:
        assert part in message
    assert len(message.splitlines()) == 1


def test_convert_a_unit_against_a_metric_without_one() -> None:
    with pytest.raises(UnitError, match=r"'2 s' has a unit but the metric declares none") as info:
        convert(2, "s", None)
    assert "unit='s'" in str(info.value)


def test_convert_overflow_is_a_unit_error() -> None:
    with pytest.raises(UnitError, match="too large"):
        convert(1e308, "d", "ns")


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (57, None, "57"),
        (57.0, None, "57"),
        (-3, None, "-3"),
        (0, None, "0"),
        (-0.0, None, "0"),
        (0.123456, None, "0.1235"),
        (2345.678, None, "2346"),
        (123456.7, None, "123457"),
        (85.3, "%", "85.3%"),
        (250, "ms", "250 ms"),
        (57, "requests", "57 requests"),
        (100, "/min", "100/min"),
        (1.5, "s", "1.5 s"),
        (999.96, None, "1000"),
        (0.0001234, None, "0.0001234"),
        (1e20, None, "1e+20"),
        (math.inf, "ms", "inf ms"),
        (math.nan, None, "nan"),
        ("degraded", None, "'degraded'"),
        ("degraded", "ms", "'degraded'"),
        ("two\nlines", None, "'two\\nlines'"),
        (True, None, "True"),
        (None, None, "None"),
    ],
)
def test_format_value(value: object, unit: str | None, expected: str) -> None:
    assert format_value(value, unit) == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(2345.678, None, "2345.678"), (2000.0, "ms", "2000 ms"), (0.1, "%", "0.1%"), (7, "s", "7 s")],
)
def test_format_value_exact(value: float, unit: str | None, expected: str) -> None:
    assert format_value(value, unit, exact=True) == expected


@pytest.mark.parametrize(
    ("unit", "kind"),
    [
        ("ms", "time"),
        ("\u00b5s", "time"),
        ("GiB", "data"),
        ("bytes", "data"),
        ("%", "ratio"),
        ("ratio", "ratio"),
        ("/min", "frequency"),
        ("requests", None),
        ("MS", None),
        (None, None),
    ],
)
def test_unit_kind_and_known_unit(unit: str | None, kind: str | None) -> None:
    assert unit_kind(unit) == kind
    if unit is not None:
        assert known_unit(unit) is (kind is not None)


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.sampled_from(["ns", "us", "ms", "s", "min", "h", "d"]),
    st.sampled_from(["ns", "us", "ms", "s", "min", "h", "d"]),
)
def test_convert_round_trips(value: float, from_unit: str, to_unit: str) -> None:
    there = convert(value, from_unit, to_unit)
    assert convert(there, to_unit, from_unit) == pytest.approx(value, rel=1e-12, abs=1e-300)


@given(st.text())
def test_parse_quantity_never_raises_anything_else(text: str) -> None:
    try:
        value, unit = parse_quantity(text)
    except UnitError as exc:
        message = str(exc)
    else:
        assert math.isfinite(value)
        assert unit is None or unit.strip() == unit
        return
    if len(text) <= 80:  # longer, it is cut to 80 characters
        assert repr(text) in message
    assert len(message.splitlines()) == 1


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53))
def test_format_value_is_one_short_line(value: float) -> None:
    text = format_value(value, "ms")
    assert text.endswith(" ms")
    assert "\n" not in text
    assert len(text) <= 24


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("2m", 120),
        ("2min", 120),
        ("4h", 14400),
        ("1d", 86400),
        (30, 30),
        ("1.5h", 5400),
    ],
)
def test_a_duration_is_read_as_seconds(text: str | int, seconds: float) -> None:
    from synthetic.units import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["-5s", "soon", "2 apples", True, float("inf")])
def test_a_bad_duration_says_what_is_expected(bad: object) -> None:
    from synthetic.units import parse_duration

    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (40, "40s"), (110, "1m50s"), (120, "2m"), (3900, "1h5m"), (7200, "2h"),
     (90061, "1d1h"), (-3, "0s")],
)  # fmt: skip
def test_a_duration_is_written_as_it_is_read(seconds: float, text: str) -> None:
    from synthetic.units import format_duration, parse_duration

    assert format_duration(seconds) == text
    assert format_duration(parse_duration(text)) == text
