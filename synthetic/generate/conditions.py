"""A threshold as a condition on a number, which each target writes in its own syntax.

A `Condition` is a disjunction of clauses, each a conjunction of bounds
(``value > 5000``): every numeric threshold form fits (a comparison, a Nagios
range, a list of numbers). String comparisons and predicates do not: a
metrics store holds numbers, so `numeric` gives None for them and the targets
fall back on the run's own verdict (the severity series).

`status_condition` covers the exception: the exporters send the status words
of `STATUS_METRICS` as 1 (``ok``) or 0, so a threshold that only tells ``ok``
from anything else (``!= 'ok'``) is a condition on that number.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from synthetic.exporters import STATUS_METRICS
from synthetic.thresholds import Comparison, Membership, Range, Threshold

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# A string no threshold lists: stands for "any other status word".
_OTHER: Final = "\x00any other status"


@dataclass(frozen=True)
class Bound:
    """``value <op> number``."""

    op: str
    number: float

    def holds(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.number)


@dataclass(frozen=True)
class Condition:
    """Breached when any clause holds; a clause holds when all its bounds do.

    No clause: never breached. An empty clause: always breached.
    """

    clauses: tuple[tuple[Bound, ...], ...]

    @property
    def single(self) -> Bound | None:
        """The one bound, when the condition is one ordering comparison
        (what CloudWatch alarms and DataDog monitors can say)."""
        if len(self.clauses) == 1 and len(self.clauses[0]) == 1:
            bound = self.clauses[0][0]
            return bound if bound.op in (">", ">=", "<", "<=") else None
        return None

    def numbers(self) -> list[float]:
        return sorted({bound.number for clause in self.clauses for bound in clause})

    def holds(self, value: float) -> bool:
        return any(all(bound.holds(value) for bound in clause) for clause in self.clauses)


def numeric(threshold: Threshold | None) -> Condition | None:
    """The condition on the metric's number, or None when the threshold compares
    strings or is a predicate."""
    if isinstance(threshold, Comparison) and not isinstance(threshold.operand, str):
        return Condition(((Bound(threshold.op, threshold.operand),),))
    if isinstance(threshold, Range):
        return Condition(tuple(_range_clauses(threshold)))
    if isinstance(threshold, Membership):
        numbers = [item for item in threshold.items if not isinstance(item, str)]
        if not numbers:
            return None
        if threshold.negated:
            return Condition((tuple(Bound("!=", n) for n in numbers),))
        return Condition(tuple((Bound("==", n),) for n in numbers))
    return None


def _range_clauses(threshold: Range) -> Iterator[tuple[Bound, ...]]:
    start, end = threshold.start, threshold.end
    if threshold.inside:
        bounds = []
        if start is not None:
            bounds.append(Bound(">=", start))
        if end is not None:
            bounds.append(Bound("<=", end))
        yield tuple(bounds)
        return
    if start is not None:
        yield (Bound("<", start),)
    if end is not None:
        yield (Bound(">", end),)


def status_condition(metric: str, threshold: Threshold | None) -> Condition | None:
    """The condition on the 1/0 the exporters send for a status word, when
    ``threshold`` tells ``ok`` from every other word and nothing more."""
    if metric not in STATUS_METRICS or threshold is None:
        return None
    words = _words(threshold)
    if words is None:
        return None
    others = {threshold.breached(word) for word in (*words - {"ok"}, _OTHER)}
    if len(others) != 1:
        return None  # e.g. == 'degraded': 0 does not say which word it was
    if threshold.breached("ok"):
        return Condition(((),)) if others.pop() else Condition(((Bound(">=", 1),),))
    return Condition(((Bound("<", 1),),)) if others.pop() else Condition(())


def _words(threshold: Threshold) -> set[str] | None:
    if isinstance(threshold, Comparison) and isinstance(threshold.operand, str):
        return {threshold.operand}
    if isinstance(threshold, Membership) and all(isinstance(i, str) for i in threshold.items):
        return {str(item) for item in threshold.items}
    return None


def boundary_points(condition: Condition) -> list[float]:
    """Each bound's number and the floats next to it on both sides: where a
    translation that is off by one comparison shows."""
    points: set[float] = set()
    for number in condition.numbers():
        points.update((math.nextafter(number, -math.inf), number, math.nextafter(number, math.inf)))
    return sorted(points)


def literal(number: float) -> str:
    """``number`` exactly, as PromQL, YAML and JSON read it: 5000, 0.8, 5000.000000000001."""
    number = float(number)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)
