"""From what a check returned (or raised) to a severity and a one-line reason."""

from __future__ import annotations

import decimal
import fractions
import math
import numbers
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synthetic import blame
from synthetic.config import NotConfigured
from synthetic.errors import (
    CheckStopped,
    MeasurementError,
    ResponseRejected,
    UnitError,
    Unreachable,
)
from synthetic.results import Measurement, Severity
from synthetic.spec import CheckSpec
from synthetic.text import printable
from synthetic.thresholds import ThresholdTypeError
from synthetic.units import convert, format_value

MAX_REASON = 300
# A reason is kept this much longer until it is masked, then cut to MAX_REASON
# (`shown_reason`): a secret across the cut is masked whole, not half shown.
_MASK_SLACK = 256
MAX_STRING_VALUE = 1024


@dataclass(frozen=True)
class Outcome:
    severity: Severity
    reason: str
    value: Any = None
    unit: str | None = None
    evidence: Any = None
    unreachable: bool = False
    # Which kind of system did not answer ("http", "redis", "postgres"), when
    # the error says: the root cause of an outage is found from it.
    via: str | None = None


def evaluate(spec: CheckSpec, returned: Any) -> Outcome:
    """Evaluate what a check returned against its thresholds, CRITICAL first."""
    name = spec.display_name
    note = ""
    if isinstance(returned, Measurement):
        value, unit, evidence = returned.value, returned.unit, returned.evidence
        note = f": {returned.note}" if returned.note else ""
    else:
        value, unit, evidence = returned, None, None

    def unknown(why: str) -> Outcome:
        return Outcome(Severity.UNKNOWN, one_line(f"{name}: {why}"), None, spec.unit, evidence)

    if value is None:
        return unknown("no value (the check returned None)")
    if isinstance(value, str) and len(value) > MAX_STRING_VALUE:
        # A status word is short; megabytes of a target's body are not a value
        # to compare, store and send on.
        return unknown(f"the value is a string of {len(value)} characters")
    if isinstance(value, bool):
        return unknown(f"the check returned a bool ({value}); return the measured value")
    value = _plain_number(value)
    if not isinstance(value, int | float | str):
        return unknown(
            f"the check returned a {type(value).__name__}; "
            "return a number, a string or a synthetic.Measurement"
        )
    if isinstance(value, int | float) and unit is not None and unit != spec.unit:
        if spec.unit is None:
            shown_unit: str | None = unit
        else:
            try:
                value = convert(float(value), unit, spec.unit)
            except UnitError as exc:
                return unknown(str(exc))
            except OverflowError:  # an int past a double
                value = math.inf if value > 0 else -math.inf
            shown_unit = spec.unit
    else:
        shown_unit = spec.unit if not isinstance(value, str) else None

    if isinstance(value, float) and not math.isfinite(value):
        # Checked after the conversion (1e308 s is inf ms). Never compared:
        # +inf would breach "> 50" and pass "< 10" alike.
        shown_odd = "NaN" if math.isnan(value) else f"infinite ({value:+})"
        return unknown(f"the value is {shown_odd}: not a measurement")

    shown = format_value(value, shown_unit)
    for severity, threshold in (
        (Severity.CRITICAL, spec.critical),
        (Severity.WARNING, spec.warning),
    ):
        if threshold is None:
            continue
        try:
            breached = threshold.breached(value)
        except ThresholdTypeError as exc:
            return Outcome(
                Severity.UNKNOWN, one_line(f"{name}: {exc}"), value, shown_unit, evidence
            )
        except Exception as exc:  # a user's predicate: its failure is UNKNOWN, not a crash
            return Outcome(
                Severity.UNKNOWN,
                one_line(f"{name} = {shown}: {severity.value} predicate raised {describe(exc)}"),
                value,
                shown_unit,
                evidence,
            )
        if breached:
            reason = f"{name} = {shown} ({severity.value} {threshold.text}){note}"
            return Outcome(severity, one_line(reason), value, shown_unit, evidence)
    reason = f"{name} = {shown} (ok){note}"
    return Outcome(Severity.OK, one_line(reason), value, shown_unit, evidence)


def _plain_number(value: Any) -> Any:
    """Decimal (SQL numerics), Fraction and NumPy scalars as float: a number is a number."""
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, decimal.Decimal) and value.is_snan():
        return math.nan  # float() refuses a signaling NaN
    if isinstance(value, decimal.Decimal | fractions.Fraction | numbers.Real):
        return float(value)
    return value


def classify(spec: CheckSpec, exc: BaseException) -> Outcome:
    """The outcome of a check (or its fixture) that raised ``exc``."""
    name = spec.display_name
    if isinstance(exc, NotConfigured):
        return Outcome(Severity.SKIPPED, one_line(f"{name}: skipped: {exc}"), unit=spec.unit)
    if isinstance(exc, CheckStopped):
        if exc.run_deadline:
            return blamed(spec, blame.run_deadline(exc.limit_s, started=True))
        return blamed(spec, blame.stopped(exc.limit_s, exc.waiting))
    if _timed_out(exc):
        # pytest-timeout's own stop (not ours, which knows what the check waited on).
        reason = f"{name}: the check ran past its deadline ({exc})"
        return Outcome(Severity.UNKNOWN, one_line(reason), unit=spec.unit)
    if isinstance(exc, Unreachable) or is_unreachable(exc):
        # Our own Unreachable already says what did not answer; a client's
        # error needs its type (ConnectError, ReadTimeout) to say it.
        told = str(exc) if isinstance(exc, Unreachable) and str(exc) else describe(exc)
        reason = f"{name}: unreachable: {told}"
        return Outcome(
            spec.unreachable, one_line(reason), unit=spec.unit, unreachable=True, via=_via(exc)
        )
    if isinstance(exc, ResponseRejected):
        # The target answered, with what the monitor will not read or follow.
        return Outcome(Severity.CRITICAL, one_line(f"{name}: {exc}"), unit=spec.unit)
    if isinstance(exc, MeasurementError):
        return Outcome(Severity.UNKNOWN, one_line(f"{name}: {exc}"), unit=spec.unit)
    return Outcome(
        Severity.UNKNOWN, one_line(f"{name}: could not measure: {describe(exc)}"), unit=spec.unit
    )


def blamed(spec: CheckSpec, told: blame.Blame) -> Outcome:
    """The outcome of a check stopped or lost as ``told`` says."""
    reason = one_line(f"{spec.display_name}: {told.reason}")
    if told.unreachable:
        return Outcome(spec.unreachable, reason, unit=spec.unit, unreachable=True, via=told.via)
    return Outcome(Severity.UNKNOWN, reason, unit=spec.unit)


def _timed_out(exc: BaseException) -> bool:
    """pytest-timeout's failure: ``pytest.fail("Timeout (>60.0s) from pytest-timeout.")``."""
    return type(exc).__name__ == "Failed" and str(exc).startswith("Timeout")


def is_unreachable(exc: BaseException) -> bool:
    """A connection error or timeout talking to the monitored system.

    Client libraries are looked up in ``sys.modules`` so this never imports
    one: an exception of a library can only exist once it is imported.
    """
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(
        exc,
        httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError,
    ):
        return True
    # httpx maps httpcore's errors to its own; recognise them unmapped too.
    httpcore = sys.modules.get("httpcore")
    if httpcore is not None and isinstance(
        exc, httpcore.TimeoutException | httpcore.NetworkError | httpcore.RemoteProtocolError
    ):
        return True
    redis_exceptions = sys.modules.get("redis.exceptions")
    if redis_exceptions is not None and isinstance(
        exc, redis_exceptions.ConnectionError | redis_exceptions.TimeoutError
    ):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


def _via(exc: BaseException) -> str | None:
    """The client library family of ``exc`` (or of what caused it)."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        if candidate is None:
            continue
        root = type(candidate).__module__.split(".", 1)[0]
        if root in _VIA:
            return _VIA[root]
    return None


_VIA = {"httpx": "http", "httpcore": "http", "redis": "redis", "psycopg": "postgres"}


def describe(exc: BaseException) -> str:
    """``Type: message``, with the request when the error carries one (httpx)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        request = None
    if request is not None and hasattr(request, "url"):
        text += f" ({request.method} {request.url})"
    return text


def one_line(text: str) -> str:
    """One line of printable text, a little over `MAX_REASON` long: every reason
    is made here, and may carry what a target sent (escape sequences included).
    `shown_reason` masks it and cuts it to `MAX_REASON`."""
    return printable(text, MAX_REASON + _MASK_SLACK)


def shown_reason(reason: str, mask: Callable[[str], str]) -> str:
    """``reason`` masked, then cut to `MAX_REASON`: the order matters, a cut
    first could leave the head of a secret standing."""
    return printable(mask(reason), MAX_REASON)
