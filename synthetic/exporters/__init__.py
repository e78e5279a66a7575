"""Exporters: a run's results as metrics for Prometheus, CloudWatch and DataDog.

Each takes a RunResult and raises ExportError (one line) when it cannot deliver.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from synthetic.errors import ExportError, MissingExtra
from synthetic.extras import require as require_extra

if TYPE_CHECKING:
    from synthetic.config import ExportersModel
    from synthetic.redact import Masker
    from synthetic.results import CheckResult, RunResult


# Metrics whose value is a status word: exported as 1 when "ok", else 0, so
# the guide's HealthStatus alarms (CloudWatch) and monitors (DataDog) can read them.
STATUS_METRICS = frozenset({"health.status", "health.check"})


def numeric_value(check: CheckResult) -> int | float | None:
    """The number a metrics backend gets for ``check``, or None when it has none.

    Status words of `STATUS_METRICS` become 1 (``ok``) or 0; a bool is 0 or 1;
    other text, a missing value and NaN or infinities (which backends refuse)
    give None. An int stays an int.
    """
    value = check.value
    if check.metric in STATUS_METRICS and isinstance(value, str):
        return 1 if value == "ok" else 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return None


def export_all(run: RunResult, settings: ExportersModel, *, masker: Masker) -> list[str]:
    """Run every exporter the environment configures; one line each, saying
    what it did or why it could not. A failing exporter never raises: the
    checks' outcomes do not depend on where their metrics go."""
    lines: list[str] = []

    def attempt(name: str, export: Callable[[], str]) -> None:
        try:
            lines.append(f"{name}: {export()}")
        except (ExportError, MissingExtra) as exc:
            lines.append(f"{name}: failed: {exc}")
        except Exception as exc:  # a bug or a library surprise costs only this exporter
            lines.append(f"{name}: failed: {type(exc).__name__}: {exc}")

    if settings.prometheus_textfile:
        path = Path(settings.prometheus_textfile)

        def textfile() -> str:
            from synthetic.exporters import prometheus

            prometheus.write_textfile(run, path)
            return f"wrote {path}"

        attempt("prometheus textfile", textfile)
    if settings.pushgateway_url:
        url = settings.pushgateway_url

        def pushgateway() -> str:
            from synthetic.exporters import prometheus

            prometheus.push(run, url, job=settings.pushgateway_job, timeout_s=settings.timeout_s)
            return f"pushed to {url} (job {settings.pushgateway_job})"

        attempt("pushgateway", pushgateway)
    if settings.cloudwatch_namespace:
        namespace = settings.cloudwatch_namespace

        def cloudwatch() -> str:
            require_extra("aws", "the CloudWatch exporter (cloudwatch_namespace)")
            import boto3
            from botocore.config import Config as BotoConfig

            from synthetic.exporters import cloudwatch as cw

            client = boto3.client(
                "cloudwatch",
                region_name=settings.cloudwatch_region,
                endpoint_url=settings.cloudwatch_endpoint_url,
                config=BotoConfig(
                    connect_timeout=settings.timeout_s,
                    read_timeout=settings.timeout_s,
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
            sent = cw.put(run, namespace=namespace, client=client, names=settings.cloudwatch_names)
            return f"{sent} metrics to {namespace}"

        attempt("cloudwatch", cloudwatch)
    if settings.dogstatsd:
        host, _, port = settings.dogstatsd.rpartition(":")

        def dogstatsd() -> str:
            require_extra("datadog", "the DogStatsD exporter (dogstatsd)")
            from synthetic.exporters import dogstatsd as dd

            sent = dd.send(
                run,
                host=host.strip("[]"),
                port=int(port),
                tags=tuple(settings.dogstatsd_tags),
                naming=dd.Naming.of(settings),
            )
            return f"{sent} gauges to {settings.dogstatsd}"

        attempt("dogstatsd", dogstatsd)
    return [masker.text(line) for line in lines]
