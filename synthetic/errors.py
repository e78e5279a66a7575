"""The errors of `synthetic`, one tree::

    SyntheticError                      root: catch this to catch them all
    ├── ConfigError (ValueError)        a bad config file, key, environment or option
    │   ├── ThresholdError              a threshold expression that does not parse
    │   │                               or whose unit cannot convert to the metric's
    │   ├── NotConfigured               a dependency a check needs is not configured
    │   │   │                           for the environment: the check is SKIPPED
    │   │   └── NotAvailable            the configured log source cannot answer it
    │   └── MissingExtra                a configured feature's extra is not installed
    ├── UnitError (ValueError)          a quantity whose unit cannot convert
    ├── ThresholdTypeError (TypeError)  a value a threshold cannot compare ('ok' > 50)
    ├── ThresholdBreach (AssertionError) a critical breach: reported as a failed test
    ├── MeasurementError                the check could not measure: UNKNOWN (broken)
    │   ├── Unreachable                 the monitored system did not answer: CRITICAL
    │   ├── ResponseRejected            it answered with what the monitor will not read
    │   │                               or follow (a body over a cap, a redirect to
    │   │                               another origin): CRITICAL
    │   ├── NotJson                     a body that is not JSON the monitor can read
    │   ├── NoLogData                   nothing to measure in the logs' window
    │   ├── LogFileError                a configured log file cannot be read
    │   └── QueryFailed                 a log backend answered with an error
    ├── CatalogueError                  collecting the checks failed (pytest's words)
    ├── StateError                      the state store cannot be read or written
    ├── ExportError                     an exporter could not deliver a run's metrics
    └── ApplyError                      a generated alarm could not be put (AWS)

    CheckStopped (BaseException)        a check stopped at its time limit

Errors carry their context as attributes, the way httpx errors carry their
request: the check (`metric`, its display name), the threshold text, the value,
the target (`target`, `url`, `path`), and their message is one line. A bad
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

    def __init__(self, reason: str, *, metric: str, value: Any, threshold: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.metric = metric  # the check's display name, e.g. bullmq.waiting{queue="email"}
        self.value = value
        self.threshold = threshold  # the critical threshold's text, e.g. "> 50"


class MeasurementError(SyntheticError):
    """The check could not measure its value: the result is UNKNOWN.

    Raise it from a check or a fixture with a reason a person can act on,
    e.g. ``MeasurementError("/health/queues has no 'whmcs.metrics'")``;
    ``target`` names what was being read, when known.
    """

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class Unreachable(MeasurementError):
    """The monitored system did not answer (connection refused, reset, timeout).

    Counted as CRITICAL with reason ``unreachable`` unless the check's
    ``metric`` marker says ``unreachable="unknown"``; ``target`` is the system.
    """


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
        super().__init__(message, target=url)
        self.url = url


class NotConfigured(ConfigError):
    """A dependency a check needs is not configured for the environment.

    Fixtures turn it into a SKIPPED check, with this message as the reason.
    """

    def __init__(self, key: str, environment: str) -> None:
        super().__init__(f"{key} is not configured for environment '{environment}'")
        self.key = key
        self.environment = environment


class NotAvailable(NotConfigured):
    """The configured log source cannot answer this check (Prometheus has no log
    lines to count): the check is skipped with this reason."""

    def __init__(self, message: str, *, key: str, environment: str = "") -> None:
        ConfigError.__init__(self, message)
        self.key = key
        self.environment = environment


class MissingExtra(ConfigError):
    """A configured feature needs an optional part that is not installed; the
    message names the extra to install (``pip install 'pytest-synthetic[logs]'``)."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class ThresholdTypeError(SyntheticError, TypeError):
    """A value whose type the threshold cannot compare, e.g. ``'ok'`` against ``> 50``."""

    def __init__(self, message: str, *, value: object, threshold: str) -> None:
        super().__init__(message)
        self.value = value
        self.threshold = threshold


class NotJson(MeasurementError):
    """The body is not JSON the monitor can read; ``target`` is the request."""


class NoLogData(MeasurementError):
    """Nothing to measure in the window (no requests, no calls to a dependency)."""


class LogFileError(MeasurementError):
    """A configured log file cannot be read; the message names it, ``target`` too."""


class QueryFailed(MeasurementError):
    """The log backend answered, with an error."""


class CatalogueError(SyntheticError):
    """Collecting the catalogue failed; the message is pytest's output."""


class StateError(SyntheticError):
    """The state store could not be read or written (one line, no secrets)."""


class ExportError(SyntheticError):
    """An exporter could not deliver a run's metrics; the message is one line."""


class ApplyError(SyntheticError):
    """A generated alarm could not be put (CloudWatch's PutMetricAlarm); one line."""


class SyntheticWarning(UserWarning):
    """Something in the config is probably a mistake but does not stop the run
    (a threshold override for a metric that no check measures)."""
