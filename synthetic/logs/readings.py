"""What the log checks ask, wherever the lines are: one small interface.

`synthetic.logs.metrics.LogMetrics` answers it from the files' analysis;
`synthetic.logs.sources.document.BackendReadings` from what a backend (Loki,
CloudWatch Logs Insights, Prometheus) answered. The ``log_analysis`` fixture
gives one or the other by ``logs.source``; the checks do not know which.

Each method returns a `Measurement` or raises: `NoLogData` (nothing in the
window: UNKNOWN, or skipped for a dependency), `NotAvailable` (the backend
does not have what the check needs: skipped, saying why), or another
`MeasurementError`.
"""

from __future__ import annotations

from typing import Any, Protocol

from synthetic.results import Measurement


class LogReadings(Protocol):
    """The answers of the log checks, each a `Measurement`."""

    about: dict[str, Any]  # where the answers come from (evidence)

    def error_rate(self) -> Measurement:
        """Requests answered with a 5xx among all requests, in the rate window (%)."""
        ...

    def error_count(self) -> Measurement:
        """Lines of level >= error_level in the recent window."""
        ...

    def response_time_p95(self, series: str = "requests") -> Measurement:
        """p95 duration (ms) of ``requests`` or ``dep:<name>`` in the recent window."""
        ...

    def slow_requests(self) -> Measurement:
        """Requests slower than slow_ms in the recent window."""
        ...

    def external_error_rate(self, dependency: str | None = None) -> Measurement:
        """Failed calls among the calls to one dependency (or all), rate window (%)."""
        ...
