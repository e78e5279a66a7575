"""synthetic.thresholds: parse threshold expressions and decide breaches."""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthetic.errors import SyntheticError, ThresholdError
from synthetic.thresholds import (
    Comparison,
    Membership,
    Predicate,
    Range,
    Threshold,
    ThresholdTypeError,
    parse_threshold,
)

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


# -- Nagios ranges ---------------------------------------------------------------------------------

# The table of https://www.monitoring-plugins.org/doc/guidelines.html#THRESHOLDFORMAT, probed just
# outside, at and just inside each endpoint: (range, value, alert?).
NAGIOS_TABLE: list[tuple[str, float, bool]] = [
    # "10": alert if < 0 or > 10
    ("10", -1, True),
    ("10", below(0), True),
    ("10", 0, False),
    ("10", above(0), False),
    ("10", 5, False),
    ("10", below(10), False),
    ("10", 10, False),
    ("10", above(10), True),
    ("10", 11, True),
    # "10:": alert if < 10
    ("10:", -1e300, True),
    ("10:", below(10), True),
    ("10:", 10, False),
    ("10:", above(10), False),
    ("10:", 1e300, False),
    ("10:", math.inf, False),
    # "~:10": alert if > 10
    ("~:10", -math.inf, False),
    ("~:10", -1e300, False),
    ("~:10", below(10), False),
    ("~:10", 10, False),
    ("~:10", above(10), True),
    ("~:10", math.inf, True),
    # "10:20": alert if < 10 or > 20
    ("10:20", below(10), True),
    ("10:20", 10, False),
    ("10:20", above(10), False),
    ("10:20", 15, False),
    ("10:20", below(20), False),
    ("10:20", 20, False),
    ("10:20", above(20), True),
    # "@10:20": alert if >= 10 and <= 20
    ("@10:20", below(10), False),
    ("@10:20", 10, True),
    ("@10:20", above(10), True),
    ("@10:20", 15, True),
    ("@10:20", below(20), True),
    ("@10:20", 20, True),
    ("@10:20", above(20), False),
    # more: @ on the other forms, negatives, floats, a one-point range, ints
    ("@10", below(0), False),
    ("@10", 0, True),
    ("@10", 10, True),
    ("@10", above(10), False),
    ("@10:", below(10), False),
    ("@10:", 10, True),
    ("@~:10", 10, True),
    ("@~:10", above(10), False),
    ("-10:-5", below(-10), True),
    ("-10:-5", -10, False),
    ("-10:-5", -5, False),
    ("-10:-5", above(-5), True),
    ("-5:5", 0, False),
    ("0.5:1.5", 0.5, False),
    ("0.5:1.5", below(0.5), True),
    ("0.5:1.5", 1.5, False),
    ("0.5:1.5", above(1.5), True),
    ("7:7", 7, False),
    ("7:7", above(7), True),
    ("@7:7", 7, True),
    ("@7:7", above(7), False),
    ("~:", -math.inf, False),
    ("~:", 1e300, False),
    ("@~:", 0, True),
    ("1e1:2E1", 15, False),
    ("  10:20  ", 21, True),
    ("@ 10 : 20", 10, True),
]


@pytest.mark.parametrize(("spec", "value", "alert"), NAGIOS_TABLE)
def test_nagios_ranges(spec: str, value: float, alert: bool) -> None:
    threshold = parse_threshold(spec, unit=None)
    assert isinstance(threshold, Range)
    assert threshold.breached(value) is alert


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ("10", (0.0, 10.0, False)),
        ("10:", (10.0, None, False)),
        ("~:10", (None, 10.0, False)),
        ("10:20", (10.0, 20.0, False)),
        ("@10:20", (10.0, 20.0, True)),
        ("@~:", (None, None, True)),
    ],
)
def test_nagios_range_fields(spec: str, fields: tuple[float | None, float | None, bool]) -> None:
    threshold = parse_threshold(spec, unit=None)
    assert isinstance(threshold, Range)
    assert (threshold.start, threshold.end, threshold.inside) == fields


@pytest.mark.parametrize(
    ("spec", "unit", "value", "alert"),
    [
        ("~:2s", "ms", 2000, False),
        ("~:2s", "ms", above(2000), True),
        ("500ms:2s", "s", 0.5, False),
        ("500ms:2s", "s", below(0.5), True),
        ("@1GiB:", "B", 1024**3, True),
        ("@1GiB:", "B", 1024**3 - 1, False),
        ("80%", "ratio", 0.8, False),
        ("80%", "ratio", 0.81, True),
        ("1:100/min", "/s", 1.6, False),
        ("1:100/min", "/s", 1.7, True),
        ("5 requests", "requests", 6, True),
    ],
)
def test_nagios_ranges_with_units(spec: str, unit: str, value: float, alert: bool) -> None:
    assert parse_threshold(spec, unit=unit).breached(value) is alert


# -- comparisons -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "unit", "value", "alert"),
    [
        ("> 50", None, 50, False),
        ("> 50", None, 50.5, True),
        (">50", None, 51, True),
        (">= 50", None, 50, True),
        ("< 50", None, 50, False),
        ("<= 50", None, 50, True),
        ("== 0", None, 0, True),
        ("== 0", None, -0.0, True),
        ("!= 200", None, 200, False),
        ("!= 200", None, 404, True),
        ("> -1.5e3", None, -1000, True),
        ("> 2s", "ms", 2000, False),
        ("> 2s", "ms", 2000.5, True),
        ("> 2 s", "ms", 2001, True),
        ("> 2000", "ms", 2001, True),
        ("< 500ms", "s", 0.4, True),
        ("< 500ms", "s", 0.5, False),
        ("> 80%", "ratio", 0.8, False),
        ("> 80%", "ratio", 0.81, True),
        ("> 0.8ratio", "%", 81, True),
        ("> 1GiB", "B", 1024**3, False),
        ("> 1GiB", "bytes", 1024**3 + 1, True),
        ("> 1GB", "B", 10**9 + 1, True),
        ("> 100/min", "/s", 1.6, False),
        ("> 100/min", "/s", 1.7, True),
        ("> 57 requests", "requests", 58, True),
        ("> 57", "requests", 57, False),
        ("> 1.5", None, math.inf, True),
        ("== 'degraded'", None, "degraded", True),
        ("== 'degraded'", None, "ok", False),
        ('== "degraded"', None, "degraded", True),
        ("!= 'ok'", None, "ok", False),
        ("!= 'ok'", None, "degraded", True),
        ("== ''", None, "", True),
        ('== "it\'s"', None, "it's", True),
        ("== 'a, [b]'", None, "a, [b]", True),
        ("== 'ok'", "ms", "ok", True),
    ],
)
def test_comparisons(spec: str, unit: str | None, value: object, alert: bool) -> None:
    threshold = parse_threshold(spec, unit=unit)
    assert isinstance(threshold, Comparison)
    assert threshold.breached(value) is alert


def test_comparison_converts_at_parse_time() -> None:
    threshold = parse_threshold("> 2s", unit="ms")
    assert threshold == Comparison(text="> 2s", unit="ms", op=">", operand=2000.0)
    assert threshold.describe() == "> 2000 ms"


# -- membership ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "unit", "value", "alert"),
    [
        ("in [1, 2, 3]", None, 2, True),
        ("in [1, 2, 3]", None, 2.0, True),
        ("in [1, 2, 3]", None, 4, False),
        ("not in [1, 2, 3]", None, 4, True),
        ("not in [1, 2, 3]", None, 3, False),
        ("in ['down', 'error']", None, "down", True),
        ("in ['down', 'error']", None, "up", False),
        ("not in ['ok', \"degraded\"]", None, "degraded", False),
        ("not in ['ok', \"degraded\"]", None, "down", True),
        ("in [1, '1']", None, 1, True),
        ("in [1, 'x']", None, "1", False),  # strictly by type: '1' is not 1
        ("in ['1', 'x']", None, "1", True),
        ("not in [1, 'x']", None, "1", True),
        ("in [2s, 500ms]", "ms", 500, True),
        ("in [2s, 500ms]", "ms", 2000, True),
        ("in [2s, 500ms]", "ms", 2, False),
        ("in [57 requests]", "requests", 57, True),
        ("in ['a,b', ']', '[']", None, "a,b", True),
        ("in ['a,b', ']', '[']", None, "]", True),
        ("in ['a,b', ']', '[']", None, "a", False),
        ("in[1]", None, 1, True),
        ("not  in [ 1 ,2 ]", None, 1, False),
        ("in [-1, 1e3, .5]", None, 1000, True),
    ],
)
def test_membership(spec: str, unit: str | None, value: object, alert: bool) -> None:
    threshold = parse_threshold(spec, unit=unit)
    assert isinstance(threshold, Membership)
    assert threshold.breached(value) is alert


def test_membership_fields() -> None:
    threshold = parse_threshold("not in [2s, 'x']", unit="ms")
    assert threshold == Membership(
        text="not in [2s, 'x']", unit="ms", items=(2000.0, "x"), negated=True
    )
    assert threshold.describe() == "not in [2000 ms, 'x']"


# -- predicates ------------------------------------------------------------------------------------


def is_odd(value: Any) -> bool:
    return bool(value % 2)


class Above:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, value: Any) -> bool:
        return bool(value > self.limit)


@pytest.mark.parametrize(
    ("func", "text"),
    [
        (is_odd, "predicate:is_odd"),
        (lambda value: value == "x", "predicate:<lambda>"),
        (Above(3), "predicate:Above"),
        (functools.partial(operator.lt, 3), "predicate:partial"),
    ],
)
def test_predicate_text(func: Callable[[Any], object], text: str) -> None:
    threshold = parse_threshold(func, unit=None)
    assert isinstance(threshold, Predicate)
    assert threshold.text == text
    assert str(threshold) == text
    assert threshold.describe() == text


def test_predicate_breached_when_truthy() -> None:
    assert parse_threshold(is_odd, unit=None).breached(3) is True
    assert parse_threshold(is_odd, unit=None).breached(4) is False
    assert parse_threshold(lambda value: value, unit=None).breached([1]) is True
    assert parse_threshold(lambda value: value, unit=None).breached("") is False


def test_predicate_errors_propagate() -> None:
    threshold = parse_threshold(is_odd, unit=None)
    with pytest.raises(TypeError, match="not all arguments converted"):
        threshold.breached("ok")


@pytest.mark.parametrize("spec", [50, 1.5, None, ["> 5"]])
def test_neither_string_nor_callable(spec: Any) -> None:
    with pytest.raises(ThresholdError, match="not a string or a callable") as info:
        parse_threshold(spec, unit=None)
    assert repr(spec) in str(info.value)


# -- text, describe, equality ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "unit", "text", "description"),
    [
        ("  > 2s ", "ms", "> 2s", "> 2000 ms"),
        (">=80%", "ratio", ">=80%", ">= 0.8 ratio"),
        ("== 'ok'", None, "== 'ok'", "== 'ok'"),
        ("10", None, "10", "< 0 or > 10"),
        ("10:", "ms", "10:", "< 10 ms"),
        ("~:2s", "ms", "~:2s", "> 2000 ms"),
        ("10:20", "%", "10:20", "< 10% or > 20%"),
        ("@10:20", None, "@10:20", ">= 10 and <= 20"),
        ("@10:", None, "@10:", ">= 10"),
        ("@~:10", None, "@~:10", "<= 10"),
        ("~:", None, "~:", "never"),
        ("@~:", None, "@~:", "always"),
        ("in [1, 'a']", "/s", "in [1, 'a']", "in [1/s, 'a']"),
        ("> 0.1", None, "> 0.1", "> 0.1"),
    ],
)
def test_text_and_describe(spec: str, unit: str | None, text: str, description: str) -> None:
    threshold = parse_threshold(spec, unit=unit)
    assert threshold.text == text
    assert str(threshold) == text
    assert threshold.describe() == description


def test_thresholds_are_frozen_and_hashable() -> None:
    threshold = parse_threshold("in [1, 'a']", unit=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        threshold.text = "> 5"  # type: ignore[misc]
    assert hash(threshold) == hash(parse_threshold("in [1, 'a']", unit=None))
    assert isinstance(threshold, Threshold)


# -- parse errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "unit", "why"),
    [
        ("", None, "empty"),
        ("   ", None, "empty"),
        ("\n\t", None, "empty"),
        ("== degraded", None, "must be quoted: == 'degraded'"),
        ("!= ok", None, "must be quoted: != 'ok'"),
        ("> fast", None, "needs a number"),
        ("> 'x'", None, "only with == or !="),
        ('< "x"', None, "only with == or !="),
        ("== 'degraded", None, "no closing '"),
        ('== "degraded', None, 'no closing "'),
        ("== 'a' 'b'", None, "unexpected"),
        ("> 5 junk 7", None, "cannot parse"),
        (">> 5", None, "cannot parse"),
        ("> ", None, "needs a number or a quoted string"),
        (">", None, "needs a number or a quoted string"),
        ("= 5", None, "'=='"),
        ("=> 5", None, "'>='"),
        ("=< 5", None, "'<='"),
        ("> nan", None, "finite"),
        ("== NaN", None, "finite"),
        ("< -inf", None, "finite"),
        ("> 1e999", None, "finite"),
        ("> 2s", None, "the metric declares none"),
        ("> 2s", "B", "'s' is a time unit and 'B' is a data unit"),
        ("> 5 requests", "jobs", "'requests'"),
        ("> 1e308 d", "ns", "too large"),
        ("in []", None, "empty"),
        ("in [ ]", None, "empty"),
        ("not in []", None, "empty"),
        ("in", None, "expected a list"),
        ("in 1, 2", None, "expected a list"),
        ("in [1, 2", None, "no closing ']'"),
        ("in [1,", None, "no closing ']'"),
        ("in [1,]", None, "missing"),
        ("in [,1]", None, "missing"),
        ("in [1,,2]", None, "missing"),
        ("in [[1]]", None, "unexpected '['"),
        ("in [1] x", None, "unexpected 'x'"),
        ("in ['a]", None, "no closing '"),
        ("in ['a' 'b']", None, "expected ',' or ']'"),
        ("in [ok]", None, "must be quoted: 'ok'"),
        ("in [2s]", None, "the metric declares none"),
        ("in [nan]", None, "finite"),
        ("'ok'", None, "did you mean == 'ok'"),
        ("hello", None, "expected a comparison"),
        ("1:2:3", None, "at most one ':'"),
        (":10", None, "no start"),
        ("10:~", None, "only start a range"),
        ("~", None, "followed by ':'"),
        ("@", None, "needs a range"),
        ("@ ", None, "needs a range"),
        ("20:10", None, "greater than its end"),
        ("@20:10", None, "greater than its end"),
        ("2s:1s", "ms", "greater than its end"),
        ("-5", None, "greater than its end"),
        ("10:inf", None, "finite"),
        ("~:2s", None, "the metric declares none"),
        ("~:2s", "%", "'s' is a time unit and '%' is a ratio unit"),
        ("10 20", None, "cannot parse"),
        ("10:x", None, "cannot parse"),
        ("@@10", None, "cannot parse"),
        ("> 5\n> 6", None, "cannot parse"),
    ],
)
def test_parse_errors(spec: str, unit: str | None, why: str) -> None:
    with pytest.raises(ThresholdError) as info:
        parse_threshold(spec, unit=unit)
    message = str(info.value)
    shown = spec.strip() or spec
    assert repr(shown) in message
    assert why in message
    assert len(message.splitlines()) == 1
    assert info.value.text == shown


# -- evaluation type errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        ("> 50", "ok", "value 'ok' is not a number (threshold > 50)"),
        ("> 50", True, "value True is a bool, not a number (threshold > 50)"),
        ("> 50", None, "value None is not a number (threshold > 50)"),
        ("> 50", math.nan, "value nan is not a number (threshold > 50)"),
        ("10:20", "15", "value '15' is not a number (threshold 10:20)"),
        ("@10:20", False, "value False is a bool, not a number (threshold @10:20)"),
        ("10:20", math.nan, "value nan is not a number (threshold 10:20)"),
        ("== 'ok'", 5, "value 5 is not a string (threshold == 'ok')"),
        ("!= 'ok'", None, "value None is not a string (threshold != 'ok')"),
        ("in ['ok']", 5, "value 5 is not a string (threshold in ['ok'])"),
        ("in [1, 2]", "1", "value '1' is not a number (threshold in [1, 2])"),
        ("in [1, 'a']", True, "value True is a bool, not a number (threshold in [1, 'a'])"),
        ("in [1, 'a']", math.nan, "value nan is not a number"),
        ("not in [1]", [1], "value [1] is not a number"),
        ("in [1,\n 2]", "x", "(threshold in [1, 2])"),
    ],
)
def test_type_errors(spec: str, value: object, message: str) -> None:
    threshold = parse_threshold(spec, unit=None)
    with pytest.raises(ThresholdTypeError) as info:
        threshold.breached(value)
    assert message in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    assert info.value.value is value
    assert info.value.threshold == threshold.text


def test_threshold_type_error_is_a_type_error_and_a_synthetic_error() -> None:
    assert issubclass(ThresholdTypeError, TypeError)
    assert issubclass(ThresholdTypeError, SyntheticError)
    assert issubclass(ThresholdError, ValueError)


# -- properties ------------------------------------------------------------------------------------

FINITE = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
VALUES = st.floats(allow_nan=False) | st.integers(-(2**60), 2**60)
SPACE = st.sampled_from(["", " ", "  ", "\t"])


@given(st.sampled_from(sorted(OPERATORS)), FINITE, VALUES, SPACE)
def test_comparisons_agree_with_operator(op: str, limit: float, value: float, space: str) -> None:
    threshold = parse_threshold(f"{op}{space}{limit!r}", unit=None)
    assert threshold.breached(value) is OPERATORS[op](value, limit)


def nagios_reference(start: float | None, end: float | None, inside: bool, value: float) -> bool:
    """The guideline's words: alert outside {start .. end}, or inside it with '@'."""
    low = -math.inf if start is None else start
    high = math.inf if end is None else end
    outside = value < low or value > high
    return not outside if inside else outside


@st.composite
def nagios_ranges(draw: st.DrawFn) -> tuple[str, float | None, float | None, bool]:
    """A range text with its start, end (None: unbounded) and @ flag."""
    a, b = sorted((draw(FINITE), draw(FINITE)))
    inside = draw(st.booleans())
    form = draw(st.sampled_from(["end", "start:", "~:end", "start:end", "~:"]))
    prefix = "@" if inside else ""
    if form == "end":
        end = abs(b)
        return f"{prefix}{end!r}", 0, end, inside
    if form == "start:":
        return f"{prefix}{a!r}:", a, None, inside
    if form == "~:end":
        return f"{prefix}~:{b!r}", None, b, inside
    if form == "start:end":
        return f"{prefix}{a!r}:{b!r}", a, b, inside
    return f"{prefix}~:", None, None, inside


@given(nagios_ranges(), VALUES)
def test_nagios_ranges_agree_with_reference(
    case: tuple[str, float | None, float | None, bool], value: float
) -> None:
    text, start, end, inside = case
    threshold = parse_threshold(text, unit=None)
    assert threshold.breached(value) is nagios_reference(start, end, inside, value)


@given(FINITE, FINITE)
def test_reversed_ranges_are_errors(a: float, b: float) -> None:
    if a == b:
        return
    low, high = sorted((a, b))
    with pytest.raises(ThresholdError, match="greater than its end"):
        parse_threshold(f"{high!r}:{low!r}", unit=None)


TOKENS = [
    ">", ">=", "<", "<=", "==", "!=", "=", "!", "in", "not", "not in", "[", "]", ",", "'", '"',
    "~", "@", ":", "0", "5", "-2.5", "1e3", "1e999", ".", "e", "s", "ms", "%", "/min", "GiB",
    "requests", " ", "nan", "inf", "ok", "\n", "_", "\u00b5", "'ok'", "-",
]  # fmt: skip
TOKEN_SOUP = st.lists(st.sampled_from(TOKENS), max_size=10).map("".join)
UNITS = st.sampled_from([None, "ms", "s", "B", "%", "ratio", "/s", "requests"])
PROBES = [0, 1, -1, 2.5, 1000, math.inf, "ok", "", None, True, math.nan]


def parsed(text: str, unit: str | None) -> Threshold | ThresholdError:
    try:
        return parse_threshold(text, unit=unit)
    except ThresholdError as exc:
        return exc


def outcome(threshold: Threshold, value: object) -> bool | str:
    """Whether `value` breaches `threshold`, or the message of its ThresholdTypeError."""
    try:
        return threshold.breached(value)
    except ThresholdTypeError as exc:
        return str(exc)


@given(st.text() | TOKEN_SOUP, UNITS)
def test_any_text_parses_or_raises_threshold_error(text: str, unit: str | None) -> None:
    result = parsed(text, unit)
    if isinstance(result, ThresholdError):
        assert len(str(result).splitlines()) == 1
        assert result.text is not None
        # The text is quoted whole, or cut to 80 characters when longer.
        if len(result.text) <= 80:
            assert repr(result.text) in str(result)
        return
    assert result.text == text.strip()
    for value in PROBES:
        breached = outcome(result, value)
        assert isinstance(breached, bool) or len(breached.splitlines()) == 1
    assert len(result.describe().splitlines()) == 1


@st.composite
def valid_thresholds(draw: st.DrawFn) -> str:
    """A valid threshold text of any form, for a metric in ms."""
    number = draw(st.floats(-1e300, 1e300) | st.integers(-(2**53), 2**53))
    quantity = draw(st.sampled_from([repr(number), f"{number!r}ms", f"{number!r} s"]))
    string = repr(draw(st.text(st.characters(exclude_characters="'\"\\", codec="utf-8"))))
    item = draw(st.sampled_from([quantity, string]))
    form = draw(st.integers(0, 3))
    if form == 0:
        return f"{draw(st.sampled_from(sorted(OPERATORS)))} {quantity}"
    if form == 1:
        return f"{draw(st.sampled_from(['==', '!=']))} {string}"
    if form == 2:
        return f"{draw(st.sampled_from(['in', 'not in']))} [{item}, {quantity}]"
    return draw(nagios_ranges())[0]


@given(valid_thresholds(), SPACE, SPACE, st.lists(VALUES | st.text(max_size=3), max_size=5))
def test_text_round_trips(spec: str, before: str, after: str, values: list[object]) -> None:
    threshold = parse_threshold(f"{before}{spec}{after}", unit="ms")
    assert threshold.text == spec
    again = parse_threshold(threshold.text, unit="ms")
    assert again == threshold
    for value in [*values, 0, 1.5, "x"]:
        assert outcome(again, value) == outcome(threshold, value)
