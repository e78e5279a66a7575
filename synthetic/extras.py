"""Optional parts, installed as extras, and the one-line error when one is missing.

The core (``pip install pytest-synthetic``) runs HTTP and Redis checks, alerts
and the Prometheus exporters. A configured feature that needs more says which
extra to install, once, in the place the feature is used::

    pip install 'pytest-synthetic[postgres]'   # the postgres fixture (psycopg)
    pip install 'pytest-synthetic[logs]'       # log metrics (polars, ddsketch)
    pip install 'pytest-synthetic[aws]'        # CloudWatch: exporter, Logs Insights, alarms
    pip install 'pytest-synthetic[datadog]'    # the DogStatsD exporter
    pip install 'pytest-synthetic[all]'        # all of them
"""

from __future__ import annotations

import importlib.util

from synthetic.errors import MissingExtra

EXTRAS: dict[str, tuple[str, ...]] = {
    "aws": ("boto3",),
    "datadog": ("datadog",),
    "logs": ("polars", "ddsketch"),
    "postgres": ("psycopg",),
}


def require(extra: str, feature: str) -> None:
    """`MissingExtra` naming ``feature`` and the extra when a module of it is not installed."""
    for module in EXTRAS[extra]:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(
                f"{feature} needs the '{extra}' extra ({module} is not installed): "
                f"pip install 'pytest-synthetic[{extra}]'",
                extra=extra,
            )
