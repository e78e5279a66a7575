"""synthetic: synthetic monitoring on pytest.

A check is a function that measures one value; its ``metric``, ``warning`` and
``critical`` markers say what it is and when it alerts::

    @pytest.mark.metric("whmcs.queue_size", unit="requests", component="queues",
                        runbook="queue-management", priority="P2")
    @pytest.mark.warning("> 10")
    @pytest.mark.critical("> 50")
    def check_whmcs_queue_size(queues):
        return queues["whmcs"]["metrics"]["queueSize"]

Everything a check author or a hook author uses is importable from here (the
names of `__all__`); the modules behind them are the framework's own and may
move. The names load on first use (PEP 562), so ``import synthetic`` (which
pytest does for the plugin in every project of the environment) costs almost
nothing until a run needs them.

PYTEST_DONT_REWRITE: the plugin needs no assertion rewriting, and the
``synthetic`` command imports this package before it starts pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from synthetic.version import __version__ as __version__

if TYPE_CHECKING:  # the names below, for type checkers (`X as X`: re-exported)
    from synthetic.alerts.delivery import DeliveryResult as DeliveryResult
    from synthetic.alerts.model import Alert as Alert
    from synthetic.alerts.payloads import Rendered as Rendered
    from synthetic.alerts.settings import Receiver as Receiver
    from synthetic.config import Config as Config
    from synthetic.config import Environment as Environment
    from synthetic.config import validate_params as validate_params
    from synthetic.errors import ApplyError as ApplyError
    from synthetic.errors import CatalogueError as CatalogueError
    from synthetic.errors import CheckStopped as CheckStopped
    from synthetic.errors import ConfigError as ConfigError
    from synthetic.errors import ExportError as ExportError
    from synthetic.errors import LogFileError as LogFileError
    from synthetic.errors import MeasurementError as MeasurementError
    from synthetic.errors import MissingExtra as MissingExtra
    from synthetic.errors import NoLogData as NoLogData
    from synthetic.errors import NotAvailable as NotAvailable
    from synthetic.errors import NotConfigured as NotConfigured
    from synthetic.errors import NotJson as NotJson
    from synthetic.errors import QueryFailed as QueryFailed
    from synthetic.errors import ResponseRejected as ResponseRejected
    from synthetic.errors import StateError as StateError
    from synthetic.errors import SyntheticError as SyntheticError
    from synthetic.errors import SyntheticWarning as SyntheticWarning
    from synthetic.errors import ThresholdBreach as ThresholdBreach
    from synthetic.errors import ThresholdError as ThresholdError
    from synthetic.errors import ThresholdTypeError as ThresholdTypeError
    from synthetic.errors import UnitError as UnitError
    from synthetic.errors import Unreachable as Unreachable
    from synthetic.logs.readings import LogReadings as LogReadings
    from synthetic.measure.bullmq import find_queues as find_queues
    from synthetic.measure.bullmq import job_counts as job_counts
    from synthetic.measure.health import HealthBody as HealthBody
    from synthetic.measure.health import HealthEntry as HealthEntry
    from synthetic.measure.health import read_snapshot as read_snapshot
    from synthetic.measure.http import BFFClient as BFFClient
    from synthetic.measure.http import Snapshot as Snapshot
    from synthetic.measure.prometheus import gauge_value as gauge_value
    from synthetic.measure.prometheus import select_series as select_series
    from synthetic.measure.prometheus import series_value as series_value
    from synthetic.measure.reading import dig as dig
    from synthetic.measure.reading import dig_number as dig_number
    from synthetic.measure.reading import increase_since_last_run as increase_since_last_run
    from synthetic.measure.reading import rate_since_last_run as rate_since_last_run
    from synthetic.measure.selector import SeriesSelector as SeriesSelector
    from synthetic.measure.selector import format_series as format_series
    from synthetic.measure.selector import parse_selector as parse_selector
    from synthetic.reports.links import LinkResult as LinkResult
    from synthetic.reports.links import fetch_links as fetch_links
    from synthetic.reports.runbooks import runbook_names as runbook_names
    from synthetic.results import CheckResult as CheckResult
    from synthetic.results import Measurement as Measurement
    from synthetic.results import RunResult as RunResult
    from synthetic.results import Severity as Severity
    from synthetic.run_state import selected_config as selected_config
    from synthetic.run_state import selected_environment as selected_environment
    from synthetic.state import Samples as Samples

# Public name -> the module it lives in.
_HOMES: dict[str, str] = {
    **dict.fromkeys(["Alert"], "synthetic.alerts.model"),
    **dict.fromkeys(["DeliveryResult"], "synthetic.alerts.delivery"),
    **dict.fromkeys(["Rendered"], "synthetic.alerts.payloads"),
    **dict.fromkeys(["Receiver"], "synthetic.alerts.settings"),
    **dict.fromkeys(["find_queues", "job_counts"], "synthetic.measure.bullmq"),
    **dict.fromkeys(["Config", "Environment", "validate_params"], "synthetic.config"),
    **dict.fromkeys(
        [
            "CheckStopped",
            "ApplyError",
            "CatalogueError",
            "MissingExtra",
            "ConfigError",
            "ExportError",
            "LogFileError",
            "MeasurementError",
            "NoLogData",
            "NotAvailable",
            "NotConfigured",
            "NotJson",
            "QueryFailed",
            "ResponseRejected",
            "StateError",
            "SyntheticError",
            "SyntheticWarning",
            "ThresholdBreach",
            "ThresholdError",
            "ThresholdTypeError",
            "UnitError",
            "Unreachable",
        ],
        "synthetic.errors",
    ),
    **dict.fromkeys(["HealthBody", "HealthEntry", "read_snapshot"], "synthetic.measure.health"),
    **dict.fromkeys(["BFFClient", "Snapshot"], "synthetic.measure.http"),
    **dict.fromkeys(["LogReadings"], "synthetic.logs.readings"),
    **dict.fromkeys(
        ["gauge_value", "select_series", "series_value"], "synthetic.measure.prometheus"
    ),
    **dict.fromkeys(
        ["dig", "dig_number", "increase_since_last_run", "rate_since_last_run"],
        "synthetic.measure.reading",
    ),
    **dict.fromkeys(["LinkResult", "fetch_links"], "synthetic.reports.links"),
    **dict.fromkeys(["runbook_names"], "synthetic.reports.runbooks"),
    **dict.fromkeys(["CheckResult", "Measurement", "RunResult", "Severity"], "synthetic.results"),
    **dict.fromkeys(["selected_config", "selected_environment"], "synthetic.run_state"),
    **dict.fromkeys(
        ["SeriesSelector", "format_series", "parse_selector"], "synthetic.measure.selector"
    ),
    **dict.fromkeys(["Samples"], "synthetic.state"),
}

__all__ = [
    "Alert",
    "ApplyError",
    "BFFClient",
    "CatalogueError",
    "CheckResult",
    "CheckStopped",
    "Config",
    "ConfigError",
    "DeliveryResult",
    "Environment",
    "ExportError",
    "HealthBody",
    "HealthEntry",
    "LinkResult",
    "LogFileError",
    "LogReadings",
    "Measurement",
    "MeasurementError",
    "MissingExtra",
    "NoLogData",
    "NotAvailable",
    "NotConfigured",
    "NotJson",
    "QueryFailed",
    "Receiver",
    "Rendered",
    "ResponseRejected",
    "RunResult",
    "Samples",
    "SeriesSelector",
    "Severity",
    "Snapshot",
    "StateError",
    "SyntheticError",
    "SyntheticWarning",
    "ThresholdBreach",
    "ThresholdError",
    "ThresholdTypeError",
    "UnitError",
    "Unreachable",
    "__version__",
    "dig",
    "dig_number",
    "fetch_links",
    "find_queues",
    "format_series",
    "gauge_value",
    "increase_since_last_run",
    "job_counts",
    "parse_selector",
    "rate_since_last_run",
    "read_snapshot",
    "runbook_names",
    "select_series",
    "selected_config",
    "selected_environment",
    "series_value",
    "validate_params",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'synthetic' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
