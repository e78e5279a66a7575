"""A run's metrics as DogStatsD gauges for the DataDog Agent (UDP, the ``datadog`` package).

Each check with a numeric value becomes a gauge named as the config's
``dogstatsd_names`` name its metric (the Customer Portal's: ``whmcs.queue_size``
is the guide's ``portal.whmcs.queue_depth``) or else ``<prefix><metric id>``
(``dogstatsd_prefix``, e.g. ``portal.``), tagged ``environment:<env>`` (and
``location:<name>`` when the run names one), the check's labels and any extra
tags::

    portal.whmcs.queue_depth:57|g|#environment:production

Every check that ran also gives ``<prefix>synthetic.severity`` (0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN, the Nagios codes) tagged ``metric:<id>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from datadog.dogstatsd.base import DogStatsd

from synthetic.errors import ExportError
from synthetic.exporters import STATUS_METRICS, numeric_value
from synthetic.results import RunResult, Severity

if TYPE_CHECKING:
    from synthetic.config import ExportersModel

__all__ = [
    "SEVERITY_METRIC",
    "STATUS_METRICS",
    "Naming",
    "gauges",
    "metric_name",
    "send",
    "severity_metric",
]

SEVERITY_METRIC: Final = "synthetic.severity"  # after the prefix


@dataclass(frozen=True)
class Naming:
    """How gauges are named: the config's ``dogstatsd_prefix`` and ``dogstatsd_names``."""

    prefix: str = ""
    names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, exporters: ExportersModel) -> Naming:
        """The naming an environment's ``exporters`` table gives."""
        return cls(exporters.dogstatsd_prefix, exporters.dogstatsd_names)


def metric_name(metric: str, naming: Naming = Naming()) -> str:
    """The DataDog name of ``metric``: its name in ``naming.names``, else the
    prefix and the metric id."""
    return naming.names.get(metric) or f"{naming.prefix}{metric}"


def severity_metric(naming: Naming = Naming()) -> str:
    """The name of the gauge of each check's severity."""
    return f"{naming.prefix}{SEVERITY_METRIC}"


def gauges(
    run: RunResult, tags: Sequence[str] = (), naming: Naming = Naming()
) -> list[tuple[str, float, list[str]]]:
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
            found.append((metric_name(check.metric, naming), value, common))
        severity_tags = [common[0], f"metric:{check.metric}", *common[1:]]
        found.append((severity_metric(naming), check.severity.nagios_code, severity_tags))
    return found


def send(
    run: RunResult,
    *,
    host: str = "127.0.0.1",
    port: int = 8125,
    tags: Sequence[str] = (),
    naming: Naming = Naming(),
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
        for name, value, gauge_tags in gauges(run, tags, naming):
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
