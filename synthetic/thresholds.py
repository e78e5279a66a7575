"""Threshold expressions: when is a metric's value an alert?

A threshold describes the *alert* condition: ``> 50`` is breached when the
value is greater than 50. The forms are:

comparison
    ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=`` and a number with an optional
    unit (``> 2s``, ``<= 80%``), or ``==``/``!=`` and a quoted string
    (``!= 'ok'``, ``== "degraded"``).
membership
    ``in [...]`` or ``not in [...]`` with a non-empty, comma-separated list of
    numbers (units allowed) and quoted strings: ``not in [200, 204]``,
    ``in ['down', 'error']``. Types compare strictly: ``1`` is not ``'1'``.
Nagios range
    Monitoring Plugins semantics
    (https://www.monitoring-plugins.org/doc/guidelines.html#THRESHOLDFORMAT),
    endpoints inclusive and allowed units (``~:2s``):

    ==========  ===============================
    ``10``      alert if < 0 or > 10
    ``10:``     alert if < 10
    ``~:10``    alert if > 10
    ``10:20``   alert if < 10 or > 20
    ``@10:20``  alert if >= 10 and <= 20
    ==========  ===============================

    The start may not be empty (write ``0:10`` or ``~:10``, not ``:10``) and
    may not be greater than the end.
predicate
    Any callable: breached when it returns a truthy value.

Numbers are converted to the metric's unit when the threshold is parsed
(``> 2s`` on a metric in ``ms`` compares ``value > 2000``), with
`synthetic.units.convert`; a number without a unit is in the metric's unit.

`parse_threshold` raises `ThresholdError` with a one-line message quoting the
text for anything it cannot parse or convert. `Threshold.breached` raises
`ThresholdTypeError` for a value of the wrong type: a string, a bool or NaN
against a number, a number against a string.
"""

from __future__ import annotations

import math
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from synthetic.errors import SyntheticError, ThresholdError, UnitError, excerpt
from synthetic.text import printable
from synthetic.units import convert, format_value, parse_quantity

__all__ = [
    "Comparison",
    "Membership",
    "Predicate",
    "Range",
    "Threshold",
    "ThresholdTypeError",
    "parse_threshold",
]

_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_EQUALITY: Final = frozenset({"==", "!="})
_QUOTES: Final = "'\""
_COMPARISON: Final = re.compile(r"(>=|<=|==|!=|>|<)(.*)", re.DOTALL)
_MEMBERSHIP: Final = re.compile(r"(not\s+in|in)(?=[\s\[]|\Z)(.*)", re.DOTALL)
_BARE_ITEM: Final = re.compile(r"[^,\[\]'\"]*")
_NON_FINITE: Final = frozenset({"nan", "inf", "infinity"})
_FORMS: Final = (
    "expected a comparison ('> 50', \"== 'ok'\"), a list test ('in [200, 204]')"
    " or a Nagios range ('10', '10:20', '~:2s', '@10:20')"
)


class ThresholdTypeError(SyntheticError, TypeError):
    """A value whose type the threshold cannot compare, e.g. ``'ok'`` against ``> 50``."""

    def __init__(self, message: str, *, value: object, threshold: str) -> None:
        super().__init__(message)
        self.value = value
        self.threshold = threshold


@dataclass(frozen=True)
class Threshold(ABC):
    """A parsed threshold: the alert condition for one metric.

    Attributes:
        text: the expression as written, stripped (``"> 2s"``, ``"@10:20"``),
            or ``predicate:<name>`` for a callable.
        unit: the metric's unit, which the numbers were converted to.
    """

    text: str
    unit: str | None

    @abstractmethod
    def breached(self, value: object) -> bool:
        """Whether `value` is an alert.

        Raises:
            ThresholdTypeError: `value` has a type this threshold cannot compare.
        """

    @abstractmethod
    def describe(self) -> str:
        """The alert condition with numbers in the metric's unit, e.g. ``> 2000 ms``."""

    def __str__(self) -> str:
        return self.text

    def _number(self, value: object) -> float:
        """`value` if it is an int or a float other than NaN; else ThresholdTypeError."""
        if isinstance(value, bool):
            raise self._type_error(value, "is a bool, not a number")
        if not isinstance(value, int | float):
            raise self._type_error(value, "is not a number")
        if math.isnan(value):
            raise self._type_error(value, "is not a number")
        return value

    def _type_error(self, value: object, problem: str) -> ThresholdTypeError:
        shown = printable(self.text, 200)
        return ThresholdTypeError(
            f"value {format_value(value)} {problem} (threshold {shown})",
            value=value,
            threshold=self.text,
        )

    def _show(self, number: float) -> str:
        return format_value(number, self.unit, exact=True)


@dataclass(frozen=True)
class Comparison(Threshold):
    """``> 50``, ``<= 2s``, ``== 'degraded'``: `op` is one of > >= < <= == !=."""

    op: str
    operand: float | str

    def breached(self, value: object) -> bool:
        compare = _OPERATORS[self.op]
        if isinstance(self.operand, str):
            if not isinstance(value, str):
                raise self._type_error(value, "is not a string")
            return compare(value, self.operand)
        return compare(self._number(value), self.operand)

    def describe(self) -> str:
        if isinstance(self.operand, str):
            return f"{self.op} {self.operand!r}"
        return f"{self.op} {self._show(self.operand)}"


@dataclass(frozen=True)
class Membership(Threshold):
    """``in [...]`` (`negated` False) or ``not in [...]`` (`negated` True)."""

    items: tuple[float | str, ...]
    negated: bool

    def breached(self, value: object) -> bool:
        strings = [item for item in self.items if isinstance(item, str)]
        numbers = [item for item in self.items if not isinstance(item, str)]
        if isinstance(value, str):
            if not strings:
                raise self._type_error(value, "is not a number")
            member = value in strings
        elif not numbers:
            raise self._type_error(value, "is not a string")
        else:
            member = self._number(value) in numbers
        return member != self.negated

    def describe(self) -> str:
        shown = ", ".join(
            repr(item) if isinstance(item, str) else self._show(item) for item in self.items
        )
        return f"{'not in' if self.negated else 'in'} [{shown}]"


@dataclass(frozen=True)
class Range(Threshold):
    """A Nagios range from `start` to `end`, inclusive; None is unbounded.

    Alerts outside the range, or inside it when `inside` (the ``@`` prefix).
    """

    start: float | None
    end: float | None
    inside: bool

    def breached(self, value: object) -> bool:
        number = self._number(value)
        within = (self.start is None or self.start <= number) and (
            self.end is None or number <= self.end
        )
        return within == self.inside

    def describe(self) -> str:
        if self.inside:
            parts = [f">= {self._show(self.start)}"] if self.start is not None else []
            if self.end is not None:
                parts.append(f"<= {self._show(self.end)}")
            return " and ".join(parts) or "always"
        parts = [f"< {self._show(self.start)}"] if self.start is not None else []
        if self.end is not None:
            parts.append(f"> {self._show(self.end)}")
        return " or ".join(parts) or "never"


@dataclass(frozen=True)
class Predicate(Threshold):
    """A callable: breached when ``func(value)`` is truthy."""

    func: Callable[[Any], object]

    def breached(self, value: object) -> bool:
        return bool(self.func(value))

    def describe(self) -> str:
        return self.text


def parse_threshold(spec: str | Callable[[Any], object], *, unit: str | None) -> Threshold:
    """Parse `spec` into a `Threshold` for a metric in `unit` (None: no unit).

    Raises:
        ThresholdError: `spec` does not parse, a number's unit does not convert
            to `unit`, or `spec` is neither a string nor a callable. The
            message is one line and quotes the text.
    """
    if isinstance(spec, str):
        return _parse(spec, unit)
    candidate: object = spec
    if callable(candidate):
        name = getattr(candidate, "__name__", None) or type(candidate).__name__
        return Predicate(text=f"predicate:{name}", unit=unit, func=candidate)
    problem = (
        f"threshold {excerpt(candidate)} ({type(candidate).__name__}) is not a string or a callable"
    )
    if isinstance(candidate, int | float) and not isinstance(candidate, bool):
        shown = excerpt(candidate)
        problem += f"; write it as a string, e.g. '> {shown}' or the Nagios range '{shown}'"
    raise ThresholdError(" ".join(problem.splitlines()), text=None)


def _error(text: str, problem: str) -> ThresholdError:
    """A ThresholdError for `text`; every piece of text in `problem` is quoted with
    `excerpt` (cut: a hostile threshold of megabytes is not echoed whole)."""
    problem = " ".join(problem.splitlines())  # a safety net: messages are one line
    return ThresholdError(f"invalid threshold {excerpt(text)}: {problem}", text=text)


def _parse(spec: str, unit: str | None) -> Threshold:
    text = spec.strip()
    if not text:
        raise _error(spec, f"it is empty; {_FORMS}")
    if match := _COMPARISON.fullmatch(text):
        return _parse_comparison(text, match[1], match[2].strip(), unit)
    if text.startswith(("=>", "=<")):
        raise _error(text, f"write {excerpt(text[1] + text[0])}, not {excerpt(text[:2])}")
    if text.startswith("="):
        raise _error(text, "use '==' to compare for equality, not '='")
    if match := _MEMBERSHIP.fullmatch(text):
        return _parse_membership(text, match[1] != "in", match[2].strip(), unit)
    if text[0] in _QUOTES:
        string = _parse_string(text, text)
        raise _error(text, f"a string alone is not a threshold; did you mean == {excerpt(string)}?")
    return _parse_range(text, unit)


def _parse_comparison(text: str, op: str, raw: str, unit: str | None) -> Comparison:
    if not raw:
        raise _error(text, f"{excerpt(op)} needs a number or a quoted string after it")
    if raw[0] in _QUOTES:
        string = _parse_string(text, raw)
        if op not in _EQUALITY:
            raise _error(text, f"strings compare only with == or !=, not {op}")
        return Comparison(text=text, unit=unit, op=op, operand=string)
    if _looks_like_words(raw):
        if op in _EQUALITY:
            raise _error(text, f"strings must be quoted: {op} {excerpt(raw)}")
        raise _error(text, f"{excerpt(op)} needs a number, not {excerpt(raw)}")
    return Comparison(text=text, unit=unit, op=op, operand=_parse_number(text, raw, unit))


def _parse_membership(text: str, negated: bool, raw: str, unit: str | None) -> Membership:
    keyword = "not in" if negated else "in"
    if not raw.startswith("["):
        raise _error(
            text,
            f"expected a list after {excerpt(keyword)}, e.g. {keyword} [200, 204]"
            f" or {keyword} ['ok', 'degraded']",
        )
    items: list[float | str] = []
    pos = 1
    while True:
        pos = _skip_space(raw, pos)
        if pos == len(raw):
            raise _error(text, "the list has no closing ']'")
        char = raw[pos]
        if char == "]" and not items:
            raise _error(text, "the list is empty")
        if char in _QUOTES:
            end = raw.find(char, pos + 1)
            if end == -1:
                raise _error(text, f"the string {excerpt(raw[pos:])} has no closing {char}")
            items.append(raw[pos + 1 : end])
            pos = end + 1
        else:
            match = _BARE_ITEM.match(raw, pos)
            assert match is not None  # the pattern matches the empty string
            item = match[0].strip()
            if not item:
                missing = "an item is missing" if char in ",]" else "unexpected '['"
                raise _error(text, f"{missing} before {excerpt(raw[pos:])}")
            if _looks_like_words(item):
                raise _error(text, f"strings in the list must be quoted: {excerpt(item)}")
            items.append(_parse_number(text, item, unit))
            pos = match.end()
        pos = _skip_space(raw, pos)
        if pos == len(raw):
            raise _error(text, "the list has no closing ']'")
        if raw[pos] == "]":
            break
        if raw[pos] != ",":
            raise _error(text, f"expected ',' or ']' before {excerpt(raw[pos:])}")
        pos += 1
    if rest := raw[pos + 1 :].strip():
        raise _error(text, f"unexpected {excerpt(rest)} after the list")
    return Membership(text=text, unit=unit, items=tuple(items), negated=negated)


def _parse_range(text: str, unit: str | None) -> Range:
    inside = text.startswith("@")
    start: float | None
    end: float | None
    body = text[1:] if inside else text
    if body.count(":") > 1:
        raise _error(text, "a range has at most one ':'")
    if ":" not in body:
        end_raw = body.strip()
        if not end_raw:
            raise _error(text, "'@' needs a range after it, e.g. @10:20")
        if end_raw == "~":
            raise _error(text, "'~' (no lower bound) must be followed by ':', e.g. ~:10")
        if not inside and not _could_be_number(end_raw):
            raise _error(text, _FORMS)
        start_raw, start = "0", 0.0
        end = _parse_number(text, end_raw, unit)
    else:
        start_raw, end_raw = (part.strip() for part in body.split(":"))
        if not start_raw:
            raise _error(
                text,
                f"the range has no start; write {excerpt('0:' + end_raw)}"
                f" or {excerpt('~:' + end_raw)} (no lower bound)",
            )
        if end_raw == "~":
            raise _error(
                text, "'~' can only start a range; leave the end empty (10:) for no upper bound"
            )
        start = None if start_raw == "~" else _parse_number(text, start_raw, unit)
        end = _parse_number(text, end_raw, unit) if end_raw else None
    if start is not None and end is not None and start > end:
        if ":" not in body:
            raise _error(
                text,
                f"{excerpt(end_raw)} means {excerpt('0:' + end_raw)},"
                " whose start is greater than its end;"
                f" write {excerpt('~:' + end_raw)} or {excerpt(end_raw + ':')}",
            )
        raise _error(
            text, f"the range start {excerpt(start_raw)} is greater than its end {excerpt(end_raw)}"
        )
    return Range(text=text, unit=unit, start=start, end=end, inside=inside)


def _parse_string(text: str, raw: str) -> str:
    """The quoted string `raw` (the whole of it), without its quotes."""
    quote = raw[0]
    end = raw.find(quote, 1)
    if end == -1:
        raise _error(text, f"the string {excerpt(raw)} has no closing {quote}")
    if rest := raw[end + 1 :].strip():
        raise _error(text, f"unexpected {excerpt(rest)} after the string")
    return raw[1:end]


def _parse_number(text: str, raw: str, unit: str | None) -> float:
    """The quantity `raw` (``"2s"``) converted to `unit`."""
    try:
        value, raw_unit = parse_quantity(raw)
        return convert(value, raw_unit, unit)
    except UnitError as exc:
        raise _error(text, str(exc)) from None


def _looks_like_words(raw: str) -> bool:
    """Whether `raw` looks like an unquoted string (``degraded``), not ``nan``."""
    first = raw[0]
    return (
        (first.isalpha() or first == "_")
        and not any(quote in raw for quote in _QUOTES)
        and raw.lower() not in _NON_FINITE
    )


def _could_be_number(raw: str) -> bool:
    """Whether `raw` starts like a number (or is NaN or infinity, for a better message)."""
    return raw[0] in "+-.0123456789" or raw.lower().lstrip("+-") in _NON_FINITE


def _skip_space(raw: str, pos: int) -> int:
    while pos < len(raw) and raw[pos].isspace():
        pos += 1
    return pos
