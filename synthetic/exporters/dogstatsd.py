"""A run's metrics as DogStatsD gauges for the DataDog Agent (UDP, the ``datadog`` package).

Each check with a numeric value becomes a gauge named as the guide names it
(`GUIDE_NAMES`: ``whmcs.queue_size`` is ``portal.whmcs.queue_depth``) or else
``portal.<metric id>``, tagged ``environment:<env>`` (and ``location:<name>``
when the run names one), the check's labels and any extra tags::

    portal.whmcs.queue_depth:57|g|#environment:production

Every check that ran also gives ``portal.synthetic.severity`` (0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN, the Nagios codes) tagged ``metric:<id>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from datadog.dogstatsd.base import DogStatsd

from synthetic.errors import ExportError
from synthetic.exporters import STATUS_METRICS, numeric_value
from synthetic.results import RunResult, Severity

__all__ = ["GUIDE_NAMES", "SEVERITY_METRIC", "STATUS_METRICS", "gauges", "metric_name", "send"]

GUIDE_NAMES: Final[Mapping[str, str]] = {
    "whmcs.queue_size": "portal.whmcs.queue_depth",
    "whmcs.failed_requests": "portal.whmcs.failed_requests",
    "salesforce.queue_size": "portal.salesforce.queue_depth",
    "salesforce.failed_requests": "portal.salesforce.failed_requests",
}
"""Our metric ids -> the DataDog metric names of the monitoring guide."""

SEVERITY_METRIC: Final = "portal.synthetic.severity"

"""Metrics whose value is a status word: sent as 1 when it is ``ok``, else 0."""


def metric_name(metric: str) -> str:
    """The DataDog name of ``metric``: the guide's, else ``portal.<metric id>``."""
    return GUIDE_NAMES.get(metric) or f"portal.{metric}"


def gauges(run: RunResult, tags: Sequence[str] = ()) -> list[tuple[str, float, list[str]]]:
    """The gauges of ``run`` as (name, value, tags), in check order (pure: sends nothing).

    Skipped checks give nothing; a check without a number (text, none, NaN)
    gives only its severity.
    """
    found: list[tuple[str, float, list[str]]] = []
    for check in run.checks:
        if check.severity is Severity.SKIPPED:
            continue
        labels = [f"{k}:{v}" for k, v in sorted(check.labels.items())]
        where = [f"location:{run.location}"] if run.location else []
        common = [f"environment:{run.environment}", *where, *labels, *tags]
        value = numeric_value(check)
        if value is not None:
            found.append((metric_name(check.metric), value, common))
        severity_tags = [common[0], f"metric:{check.metric}", *common[1:]]
        found.append((SEVERITY_METRIC, check.severity.nagios_code, severity_tags))
    return found


def send(
    run: RunResult, *, host: str = "127.0.0.1", port: int = 8125, tags: Sequence[str] = ()
) -> int:
    """Send ``run``'s `gauges` to the DogStatsD server at ``host:port``; the number sent.

    One datagram per gauge, so a failed send is noticed (the library logs
    and drops by default). A host that does not resolve or a send the system
    refuses (nothing listens on a loopback port) raises `ExportError`; UDP
    cannot tell that a remote agent received what went out.
    """
    statsd = DogStatsd(
        host=host,
        port=port,
        disable_telemetry=True,
        disable_buffering=False,
        flush_interval=0,  # no background flush: each flush() below reports its send
        origin_detection_enabled=False,  # the monitor's own container is not news
        track_instance=False,
    )
    sent = 0
    try:
        try:
            statsd.get_socket()
        except (OSError, ValueError) as exc:
            raise ExportError(f"DogStatsD at {host}:{port} is not reachable: {exc}") from exc
        for name, value, gauge_tags in gauges(run, tags):
            statsd.gauge(name, value, tags=gauge_tags)
            if not statsd.flush():
                raise ExportError(
                    f"DogStatsD at {host}:{port}: sending {name} failed after {sent} "
                    "gauges were sent (is an agent listening?)"
                )
            sent += 1
    finally:
        statsd.close_socket(quiet=True)
    return sent
