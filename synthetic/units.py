"""Quantities and units: parse ``2s``, ``500 ms`` or ``80%``, convert, format.

A *quantity* is a number with an optional unit. A number without a unit is
in the unit of the metric it is compared with; a number with a unit is
converted to the metric's unit, and must be convertible.

Four kinds of unit convert within their kind (unit names are case-sensitive:
``MB`` is not ``mb`` and ``ms`` is not ``Ms``):

==========  ==============================================================
time        ``ns``; ``us`` (``µs``, ``μs``); ``ms``;
            ``s`` (``sec``, ``second``, ``seconds``);
            ``min`` (``minute``, ``minutes``); ``h`` (``hour``, ``hours``);
            ``d`` (``day``, ``days``)
data        ``B`` (``byte``, ``bytes``); ``kB`` (``KB``), ``MB``, ``GB``,
            ``TB`` are powers of 1000; ``KiB``, ``MiB``, ``GiB``, ``TiB``
            are powers of 1024
ratio       ``%`` (``percent``) is 0.01; ``ratio`` is 1
frequency   ``/s`` (``/sec``), ``/min``, ``/h``
==========  ==============================================================

Any other unit word (``requests``, ``jobs``, ``connections``, ``req/s``) is
*opaque*: it converts only to itself.

Conversions are exact up to the final rounding to a float: ``2 s`` in ``ms``
is exactly ``2000.0`` and ``80 %`` as a ``ratio`` is exactly ``0.8``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Final

from synthetic.errors import UnitError, excerpt

__all__ = [
    "convert",
    "format_duration",
    "format_value",
    "known_unit",
    "parse_duration",
    "parse_quantity",
    "unit_kind",
]

# unit -> (kind, size in the smallest unit of its kind). Integer sizes keep
# conversions exact (see `convert`).
_NS: Final = 1
_S: Final = 10**9
_UNITS: Final[dict[str, tuple[str, int]]] = {
    # time, in nanoseconds
    "ns": ("time", _NS),
    "us": ("time", 1000 * _NS),
    "\u00b5s": ("time", 1000 * _NS),  # MICRO SIGN
    "\u03bcs": ("time", 1000 * _NS),  # GREEK SMALL LETTER MU
    "ms": ("time", 10**6 * _NS),
    "s": ("time", _S),
    "sec": ("time", _S),
    "second": ("time", _S),
    "seconds": ("time", _S),
    "min": ("time", 60 * _S),
    "minute": ("time", 60 * _S),
    "minutes": ("time", 60 * _S),
    "h": ("time", 3600 * _S),
    "hour": ("time", 3600 * _S),
    "hours": ("time", 3600 * _S),
    "d": ("time", 86400 * _S),
    "day": ("time", 86400 * _S),
    "days": ("time", 86400 * _S),
    # data, in bytes
    "B": ("data", 1),
    "byte": ("data", 1),
    "bytes": ("data", 1),
    "kB": ("data", 1000),
    "KB": ("data", 1000),
    "MB": ("data", 1000**2),
    "GB": ("data", 1000**3),
    "TB": ("data", 1000**4),
    "KiB": ("data", 1024),
    "MiB": ("data", 1024**2),
    "GiB": ("data", 1024**3),
    "TiB": ("data", 1024**4),
    # ratio, in percent
    "%": ("ratio", 1),
    "percent": ("ratio", 1),
    "ratio": ("ratio", 100),
    # frequency, in events per hour
    "/h": ("frequency", 1),
    "/min": ("frequency", 60),
    "/s": ("frequency", 3600),
    "/sec": ("frequency", 3600),
}

_NUMBER: Final = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# "%", or words that may start with "/" and contain "/": "ms", "/min", "req/s".
_UNIT: Final = r"%|/?[^\W\d]\w*(?:/[^\W\d]\w*)*"
_QUANTITY: Final = re.compile(rf"\s*(?P<number>{_NUMBER})\s*(?P<unit>{_UNIT})?\s*")
_NON_FINITE: Final = frozenset({"nan", "inf", "infinity"})


def known_unit(unit: str) -> bool:
    """Whether `unit` is one of the units `synthetic` can convert (not opaque)."""
    return unit in _UNITS


def unit_kind(unit: str | None) -> str | None:
    """The kind of `unit`: ``"time"``, ``"data"``, ``"ratio"``, ``"frequency"``.

    None for no unit and for opaque units such as ``"requests"``.
    """
    if unit is None or unit not in _UNITS:
        return None
    return _UNITS[unit][0]


def parse_quantity(text: str) -> tuple[float, str | None]:
    """Split ``"2s"``, ``"500 ms"``, ``"80%"`` or ``"57 requests"`` into number and unit.

    The number is an int or float literal with an optional sign and exponent;
    the unit, if any, follows with or without a space. The unit is returned as
    written (aliases are not normalised); None when there is none.

    Raises:
        UnitError: `text` is not a finite number with an optional unit.
    """
    match = _QUANTITY.fullmatch(text)
    if match is None:
        if text.strip().lstrip("+-").lower() in _NON_FINITE:
            raise UnitError(f"{excerpt(text)} is not allowed: a quantity must be a finite number")
        raise UnitError(
            f"cannot parse {excerpt(text)} as a quantity: expected a number with an optional unit,"
            " like '2s', '500 ms', '80%' or '57 requests'"
        )
    value = float(match["number"])
    if not math.isfinite(value):
        raise UnitError(f"{excerpt(text)} is too large: a quantity must be a finite number")
    return value, match["unit"]


def convert(value: float, from_unit: str | None, to_unit: str | None) -> float:
    """Convert `value` from `from_unit` to `to_unit` (the metric's unit).

    A number without a unit (`from_unit` None) is already in the metric's unit
    and is returned as is, as is a number whose unit is `to_unit`.

    Raises:
        UnitError: `from_unit` is set but `to_unit` is None (the metric declares
            no unit), the units are of different kinds or either is opaque, or
            the result does not fit in a float.
    """
    if from_unit is None or from_unit == to_unit:
        return value
    shown = format_value(value, from_unit, exact=True)
    if to_unit is None:
        raise UnitError(
            f"{excerpt(shown)} has a unit but the metric declares none;"
            f" add unit={excerpt(from_unit)} to the metric marker or drop the unit"
        )
    source = _UNITS.get(from_unit)
    target = _UNITS.get(to_unit)
    if source is None or target is None or source[0] != target[0]:
        why = _why(from_unit, to_unit)
        raise UnitError(
            f"cannot convert {excerpt(shown)} from {excerpt(from_unit)}"
            f" to {excerpt(to_unit)}: {why}"
        )
    if not math.isfinite(value):
        return value * source[1] / target[1]
    try:
        return float(Fraction(value) * Fraction(source[1], target[1]))
    except OverflowError:
        raise UnitError(f"{excerpt(shown)} is too large to express in {excerpt(to_unit)}") from None


def _why(from_unit: str, to_unit: str) -> str:
    """Why `from_unit` does not convert to `to_unit`, for an error message."""
    for unit in (from_unit, to_unit):
        if unit not in _UNITS:
            return f"{excerpt(unit)} is not a unit synthetic knows, so it converts only to itself"
    kinds = _UNITS[from_unit][0], _UNITS[to_unit][0]
    return f"{excerpt(from_unit)} is a {kinds[0]} unit and {excerpt(to_unit)} is a {kinds[1]} unit"


def format_value(value: object, unit: str | None = None, *, exact: bool = False) -> str:
    """Show `value` (in `unit`) to people, on one line, e.g. in a check's reason.

    ints show as ints (``57``); floats with 4 significant digits (``0.1235``,
    ``85.3``) or, from 1000 up, rounded to an integer (``2346``); with
    ``exact=True`` floats show in full (``2345.678``, ``2000``). Strings show
    quoted (``'degraded'``) and anything else as its repr. A unit follows
    numbers only: ``%`` and per-time units like ``/min`` attach (``85.3%``,
    ``100/min``), other units follow a space (``250 ms``, ``57 requests``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value)
    text = str(value) if isinstance(value, int) else _format_float(value, exact=exact)
    if unit is None:
        return text
    separator = "" if unit == "%" or unit.startswith("/") else " "
    return f"{text}{separator}{unit}"


def _format_float(value: float, *, exact: bool) -> str:
    if not math.isfinite(value):
        return repr(value)
    if exact:
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    # 4 significant digits, but no exponent for big numbers: 2345.678 is "2346".
    text = f"{value:.0f}" if 1000 <= abs(value) < 1e15 else f"{value:.4g}"
    return "0" if text == "-0" else text


_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|min|s|m|h|d)")
_COMPOUND = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|min|s|m|h|d)){2,}")


def parse_duration(text: str | float | int, *, where: str = "duration") -> float:
    """``"90s"``, ``"2m"``, ``"4h"``, ``"1d"``, ``"1h30m"`` or a number of seconds,
    as seconds (>= 0).

    ``m`` is minutes here, as in Prometheus, Alertmanager and every ``--every``
    option (in a threshold, ``m`` is not a unit: ``min`` is).
    """
    if isinstance(text, bool):
        raise ValueError(f"{where}: expected a duration like '2m', got a boolean")
    compound = _COMPOUND.fullmatch(text.strip()) if isinstance(text, str) else None
    if isinstance(text, int | float):
        seconds = float(text)
    elif compound is not None:  # 1h30m, 1m50s: as Prometheus and Go write them
        seconds = sum(
            float(number) * _DURATION_UNITS[unit] for number, unit in _PART.findall(compound[0])
        )
    else:
        try:
            value, unit = parse_quantity(text.strip())
            seconds = convert(value, {"m": "min", None: "s"}.get(unit, unit), "s")
        except UnitError:
            raise ValueError(
                f"expected a duration like '90s', '2m' or '4h' (got {excerpt(text)})"
            ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration cannot be negative or infinite (got {excerpt(text)})")
    return seconds


def format_duration(seconds: float) -> str:
    """``40s``, ``1m50s``, ``2m``, ``1h5m``, ``3d4h``: whole seconds, as durations are written."""
    total = max(0, round(seconds)) if math.isfinite(seconds) else 0
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return "".join(shown[:2]) or "0s"
