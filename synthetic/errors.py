"""The errors of `synthetic`, one small tree::

    SyntheticError                      root: catch this to catch them all
    ├── ConfigError (ValueError)        a bad config file, key, environment or option
    │   └── ThresholdError              a threshold expression that does not parse
    │                                   or whose unit cannot convert to the metric's
    ├── UnitError (ValueError)          a quantity whose unit cannot convert
    ├── ThresholdBreach (AssertionError) a critical breach: reported as a failed test
    └── MeasurementError                the check could not measure: UNKNOWN (broken)
        ├── Unreachable                 the monitored system did not answer: CRITICAL
        └── ResponseRejected            it answered with what the monitor will not read
                                        or follow (a body over a cap, a redirect to
                                        another origin): CRITICAL

    CheckStopped (BaseException)        a check stopped at its time limit

Errors carry their context (check, metric, value, limit) as attributes, the
way httpx errors carry their request, and their message is one line. A bad
value a message quotes is quoted with `excerpt`: cut, so a hostile one (a
2 MB threshold, a 10,000-deep list) cannot become the message.
"""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthetic.waits import Wait

SHOWN_CHARS = 80
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = SHOWN_CHARS
_SHOWN.maxlevel = 3
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 6


def excerpt(value: object) -> str:
    """``repr(value)`` for a one-line message: a string cut to `SHOWN_CHARS`
    characters (its head and tail around ``...``), anything else's repr cut
    the same way, nested containers shown 3 levels deep."""
    if isinstance(value, str):
        if len(value) > SHOWN_CHARS:
            half = (SHOWN_CHARS - 3) // 2
            value = f"{value[:half]}...{value[-half:]}"
        return repr(value)
    return _SHOWN.repr(value)


class SyntheticError(Exception):
    """Root of every error raised by `synthetic`."""


class ConfigError(SyntheticError, ValueError):
    """A config file, key, environment or option is wrong.

    The message names where: the file and the dotted key, or the option.
    """


class ThresholdError(ConfigError):
    """A threshold expression that does not parse or cannot apply to its metric."""

    def __init__(self, message: str, *, text: str | None = None) -> None:
        super().__init__(message)
        self.text = text


class UnitError(SyntheticError, ValueError):
    """A quantity's unit is unknown or cannot be converted to the wanted unit."""


class ThresholdBreach(SyntheticError, AssertionError):
    """A check's value breached its critical threshold.

    An `AssertionError`, so pytest, JUnit and Allure show a failed test.
    """

    def __init__(self, reason: str, *, metric: str, value: Any, limit: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.metric = metric
        self.value = value
        self.limit = limit


class MeasurementError(SyntheticError):
    """The check could not measure its value: the result is UNKNOWN.

    Raise it from a check or a fixture with a reason a person can act on,
    e.g. ``MeasurementError("/health/queues has no 'whmcs.metrics'")``.
    """


class Unreachable(MeasurementError):
    """The monitored system did not answer (connection refused, reset, timeout).

    Counted as CRITICAL with reason ``unreachable`` unless the check's
    ``metric`` marker says ``unreachable="unknown"``.
    """

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class CheckStopped(BaseException):
    """A check stopped at its time limit (`synthetic.stop`).

    A BaseException, as KeyboardInterrupt is, so a check's ``except Exception``
    does not swallow it (a bare ``except:`` does: the watchdog is for that).
    ``waiting`` is the call to the target in flight when it was stopped, if
    any: then the target is to blame. ``run_deadline``: the run's time ran out,
    not the check's.
    """

    def __init__(self, limit_s: float, *, waiting: Wait | None, run_deadline: bool) -> None:
        what = "the run's time ran out" if run_deadline else "the check's time limit"
        super().__init__(f"stopped after {limit_s:g} s: {what}")
        self.limit_s = limit_s
        self.waiting = waiting
        self.run_deadline = run_deadline


class ResponseRejected(MeasurementError):
    """The monitored system answered, with more than the monitor reads (a body
    over ``max_body_bytes``, a /metrics over ``max_series``) or a redirect it
    does not follow (another origin): CRITICAL, never ``unreachable``.

    ``url`` is the request it answered (as the check asked for it).
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class SyntheticWarning(UserWarning):
    """Something in the config is probably a mistake but does not stop the run
    (a threshold override for a metric that no check measures)."""
