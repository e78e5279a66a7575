"""The BFF's Pino logs, as the guide's greps read them, without the greps.

- ``logs.error_count``: lines of level >= 50 in the last 5 minutes (the
  guide's HighErrorRate alarm: "> 10 errors in 5 min").
- ``logs.response_time_p95``: p95 of the request lines' ``duration`` in the
  last 5 minutes (DDSketch, 1 % relative accuracy).
- ``logs.slow_requests``: requests slower than ``slow_ms`` (2 s) in the last
  5 minutes, with the 20 slowest lines as evidence.

The files are ``log_files``; how lines map to fields is the environment's
``logs`` table. Each run reads only what was appended since the last one.
"""

from __future__ import annotations

import pytest

from synthetic import LogReadings, Measurement

pytestmark = pytest.mark.metric(component="bff", runbook="incident-response")


@pytest.mark.metric("logs.error_count", unit="lines", priority="P2")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_error_count(log_analysis: LogReadings) -> Measurement:
    """Log lines of level >= 50 (error, fatal) in the last 5 minutes."""
    return log_analysis.error_count()


@pytest.mark.metric("logs.response_time_p95", unit="ms", priority="P3")
@pytest.mark.warning("> 2s")
@pytest.mark.critical("> 5s")
def check_response_time_p95_from_logs(log_analysis: LogReadings) -> Measurement:
    """p95 duration of the request lines in the last 5 minutes."""
    return log_analysis.response_time_p95()


@pytest.mark.metric("logs.slow_requests", unit="requests", priority="P3")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 100")
def check_slow_requests(log_analysis: LogReadings) -> Measurement:
    """Requests slower than 2 s (slow_ms) in the last 5 minutes."""
    return log_analysis.slow_requests()
