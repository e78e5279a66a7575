"""Reading a check's value out of what an endpoint answered, and counters
measured since the previous run.

`dig` and `dig_number` walk a parsed JSON document and raise a
`MeasurementError` naming the missing or unreadable part, so a check never
reports green for a field it could not read. `increase_since_last_run` and
`rate_since_last_run` turn a counter into a per-run value with the run's
`Samples` (the state store); the first run records the baseline and skips.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NoReturn

from synthetic.errors import MeasurementError

if TYPE_CHECKING:
    from synthetic.state import Samples

__all__ = ["dig", "dig_number", "increase_since_last_run", "rate_since_last_run"]


def dig(document: Any, *path: str) -> Any:
    """``document[path[0]][path[1]]...``; a `MeasurementError` naming the missing part."""
    current = document
    for depth, key in enumerate(path):
        if not isinstance(current, dict) or key not in current:
            where = ".".join(path[:depth]) or "the body"
            raise MeasurementError(f"{where} has no '{key}'")
        current = current[key]
    return current


def dig_number(document: Any, *path: str, minimum: float | None = 0) -> float:
    """`dig` for a number: a `MeasurementError` naming the field when it is not
    a finite number (JSON's NaN, Infinity or 1e400 read as floats) or is below
    ``minimum`` (a negative queue size or counter). Never read as healthy."""
    value = dig(document, *path)
    field = ".".join(path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeasurementError(f"{field} is not a number: {str(value)[:40]!r}")
    if not math.isfinite(value):
        raise MeasurementError(f"{field} is {value}: not a finite number")
    if minimum is not None and value < minimum:
        raise MeasurementError(f"{field} is {value:g}: below {minimum:g}, not a measurement")
    return value


def _first_run(name: str, counter: float) -> NoReturn:
    import pytest

    pytest.skip(f"first run: baseline {name}={counter:g} recorded; measured from the next run")


def increase_since_last_run(samples: Samples, name: str, counter: float) -> float:
    """How much ``counter`` grew since the previous run (resets handled).

    The first run has nothing to compare with: it records the baseline and
    the check is skipped with a reason that says so.
    """
    increase = samples.increase(name, counter)
    if increase is None:
        _first_run(name, counter)
    return increase


def rate_since_last_run(samples: Samples, name: str, counter: float) -> float:
    """``counter``'s increase per minute since the previous run; baseline on the first."""
    rate = samples.rate(name, counter, per_seconds=60)
    if rate is None:
        _first_run(name, counter)
    return rate
