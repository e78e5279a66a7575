"""PromQL-style series selectors: which samples of a Prometheus exposition to read.

::

    bff_http_active_connections
    bff_http_active_connections{server="public"}
    sum(bff_http_active_connections{server=~"public|admin", pod!=""})

A metric name, optional label matchers (``=``, ``!=``, ``=~``, ``!~``; a
regex matches the whole value, as PromQL anchors it; a label a series does
not have has the value ``""``), and an optional aggregation over the series
that match (``sum``, ``max``, ``min``, ``avg``). Label values are in double
quotes with the exposition format's escapes: ``\\\\``, ``\\"``, ``\\n``.

`parse_selector` is pure; its `ValueError` is one line saying what is wrong
and where (the config loader prefixes the key).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, cast

__all__ = ["Matcher", "SeriesSelector", "format_series", "parse_selector"]

Operator = Literal["=", "!=", "=~", "!~"]
Aggregation = Literal["sum", "max", "min", "avg"]

AGGREGATIONS: Final[Mapping[str, Callable[[Sequence[float]], float]]] = {
    "sum": lambda values: float(sum(values)),
    "max": max,
    "min": min,
    "avg": statistics.fmean,
}
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATORS: Final = ("=~", "!~", "!=", "=")  # two-character ones first
_ESCAPES: Final = {"\\": "\\", '"': '"', "n": "\n"}
_SHOWN: Final = 120
_SHOWN_LABEL: Final = 40


def escape(value: str) -> str:
    """A label value as the exposition format quotes it (without the quotes)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_series(name: str, labels: Mapping[str, str]) -> str:
    """``name{a="1",b="2"}`` as the exposition writes it (labels sorted)."""
    if not labels:
        return name
    pairs = ",".join(f'{key}="{escape(value)}"' for key, value in sorted(labels.items()))
    return f"{name}{{{pairs}}}"


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``label op "value"``."""

    label: str
    op: Operator
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~") and self._regex is None:
            # PromQL anchors the regex at both ends (it matches the whole value) and,
            # since Prometheus 3, lets . match a newline too.
            object.__setattr__(self, "_regex", re.compile(f"(?:{self.value})", re.DOTALL))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self._regex is not None:
            return (self._regex.fullmatch(actual) is not None) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{escape(self.value)}"'


@dataclass(frozen=True)
class SeriesSelector:
    """A metric name, label matchers and an optional aggregation."""

    name: str
    matchers: tuple[Matcher, ...] = ()
    aggregation: Aggregation | None = None

    @classmethod
    def equal(cls, name: str, labels: Mapping[str, str] | None = None) -> SeriesSelector:
        """``name{k="v",...}``: the series whose labels include every pair."""
        matchers = tuple(Matcher(k, "=", v) for k, v in sorted((labels or {}).items()))
        return cls(name, matchers)

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        return name == self.name and all(m.matches(labels) for m in self.matchers)

    def aggregate(self, values: Sequence[float]) -> float:
        """The aggregation of ``values`` (at least one); without one, the only value."""
        if self.aggregation is None:
            if len(values) != 1:
                raise ValueError(f"{self} selects {len(values)} values; it has no aggregation")
            return float(values[0])
        return float(AGGREGATIONS[self.aggregation](values))

    @property
    def vector(self) -> str:
        """The selector without its aggregation: ``name{...}``."""
        if not self.matchers:
            return self.name
        return f"{self.name}{{{','.join(str(m) for m in self.matchers)}}}"

    def __str__(self) -> str:
        return f"{self.aggregation}({self.vector})" if self.aggregation else self.vector


def parse_selector(text: str) -> SeriesSelector:
    """The selector ``text`` means; a one-line `ValueError` when it is malformed."""
    return _Parser(text).selector()


class _Parser:
    """A recursive-descent parser over ``text`` (selectors are short: no tokenizer)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def selector(self) -> SeriesSelector:
        self._space()
        if not self.text.strip():
            raise ValueError('empty selector; expected a metric name such as up or up{job="x"}')
        word = self._match(_NAME)
        if word is None:
            raise self._error("expected a metric name")
        self._space()
        aggregation: Aggregation | None = None
        if self._peek("("):
            if word not in AGGREGATIONS:
                known = ", ".join(AGGREGATIONS)
                raise self._error(f"'{word}(' is not an aggregation this reads ({known})")
            aggregation = cast(Aggregation, word)
            self.at += 1
            self._space()
            word = self._match(_NAME)
            if word is None:
                raise self._error(f"expected a metric name inside {aggregation}(...)")
            self._space()
        matchers = self._matchers() if self._peek("{") else ()
        self._space()
        if aggregation is not None:
            if not self._peek(")"):
                raise self._error(f"expected ')' closing {aggregation}(")
            self.at += 1
            self._space()
        if self.at < len(self.text):
            raise self._error("unexpected text after the selector")
        return SeriesSelector(word, matchers, aggregation)

    def _matchers(self) -> tuple[Matcher, ...]:
        self.at += 1  # {
        found: list[Matcher] = []
        while True:
            self._space()
            if self._peek("}"):
                self.at += 1
                return tuple(found)
            name = self._match(_LABEL)
            if name is None:
                raise self._error("expected a label name or '}'")
            label = name if len(name) <= _SHOWN_LABEL else name[: _SHOWN_LABEL - 1] + "…"
            self._space()
            op = next((o for o in _OPERATORS if self.text.startswith(o, self.at)), None)
            if op is None:
                raise self._error(f"expected =, !=, =~ or !~ after label {label}")
            self.at += len(op)
            self._space()
            value = self._string(label)
            try:
                found.append(Matcher(name, cast(Operator, op), value))
            except re.error as exc:
                raise ValueError(f"label {label}: invalid regex {value!r}: {exc.msg}") from None
            self._space()
            if self._peek(","):
                self.at += 1
            elif not self._peek("}"):
                raise self._error("expected ',' or '}' after a label matcher")

    def _string(self, label: str) -> str:
        if not self._peek('"'):
            raise self._error(f"expected a value in double quotes for label {label}")
        start = self.at
        self.at += 1
        out: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == '"':
                self.at += 1
                return "".join(out)
            if char == "\n":
                break
            if char == "\\":
                escaped = self.text[self.at + 1 : self.at + 2]
                if escaped not in _ESCAPES:
                    shown = repr("\\" + escaped) if escaped else "a lone \\"
                    raise self._error(
                        f'label {label}: unknown escape {shown} (only \\\\, \\" and \\n; '
                        "write \\\\ for a backslash)"
                    )
                out.append(_ESCAPES[escaped])
                self.at += 2
                continue
            out.append(char)
            self.at += 1
        self.at = start
        raise self._error(f"label {label}: the value's quote is not closed")

    def _space(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
            self.at += 1

    def _peek(self, char: str) -> bool:
        return self.text.startswith(char, self.at)

    def _match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.at)
        if found is None:
            return None
        self.at = found.end()
        return found.group()

    def _error(self, message: str) -> ValueError:
        shown = self.text if len(self.text) <= _SHOWN else self.text[: _SHOWN - 1] + "…"
        return ValueError(f"{message} at character {self.at + 1} of {shown!r}")
