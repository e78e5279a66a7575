"""synthetic: synthetic monitoring on pytest.

A check is a function that measures one value; its ``metric``, ``warning`` and
``critical`` markers say what it is and when it alerts::

    @pytest.mark.metric("whmcs.queue_size", unit="requests", component="queues",
                        runbook="queue-management", priority="P2")
    @pytest.mark.warning("> 10")
    @pytest.mark.critical("> 50")
    def check_whmcs_queue_size(queues):
        return queues["whmcs"]["metrics"]["queueSize"]

PYTEST_DONT_REWRITE: the plugin needs no assertion rewriting, and the
``synthetic`` command imports this package before it starts pytest.
"""

from synthetic.config import Config, Environment, NotConfigured
from synthetic.errors import (
    ConfigError,
    MeasurementError,
    ResponseRejected,
    SyntheticError,
    ThresholdBreach,
    ThresholdError,
    UnitError,
    Unreachable,
)
from synthetic.http import BFFClient, Snapshot
from synthetic.results import CheckResult, Measurement, RunResult, Severity
from synthetic.state import Samples
from synthetic.version import __version__

__all__ = [
    "BFFClient",
    "CheckResult",
    "Config",
    "ConfigError",
    "Environment",
    "Measurement",
    "MeasurementError",
    "NotConfigured",
    "ResponseRejected",
    "RunResult",
    "Samples",
    "Severity",
    "Snapshot",
    "SyntheticError",
    "ThresholdBreach",
    "ThresholdError",
    "UnitError",
    "Unreachable",
    "__version__",
]
