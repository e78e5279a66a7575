"""The ``pytest_synthetic_*`` hooks a conftest or plugin may implement.

They run on the controller process only (never on an xdist worker), once the
results are gathered, so an implementation sees every check exactly once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from synthetic.alerts.delivery import DeliveryResult
    from synthetic.alerts.model import Alert
    from synthetic.alerts.settings import Receiver
    from synthetic.results import CheckResult, RunResult

hookspec = pytest.hookspec


@hookspec
def pytest_synthetic_result(result: CheckResult, config: pytest.Config) -> None:
    """Called for each check's result as it arrives on the controller."""


@hookspec
def pytest_synthetic_run_finished(run: RunResult, config: pytest.Config) -> None:
    """Called once per run after ``results.json`` is written, with every result,
    before alerts are decided."""


@hookspec(firstresult=True)
def pytest_synthetic_alert_payload(
    receiver: Receiver, alert: Alert, request: dict[str, Any], config: pytest.Config
) -> dict[str, Any] | None:
    """Change what one receiver is sent about one alert.

    ``request`` is the rendered request: ``{"method", "url", "json"}`` for an
    HTTP receiver, ``{"smtp", "from", "to", "subject", "message"}`` for email.
    Return a replacement (same shape), or None to keep it. Also applied to
    the files of ``--alerts dry-run``, so a dry run shows the change.
    """


@hookspec(firstresult=True)
def pytest_synthetic_alert_send(
    receiver: Receiver, alert: Alert, request: dict[str, Any], config: pytest.Config
) -> DeliveryResult | None:
    """Deliver one alert yourself: return a `DeliveryResult`, or None to leave it
    to the built-in sender.

    This is how a plugin adds a receiver: declare it in the config with
    ``type = "custom"`` (its ``request["json"]`` is the generic webhook document)
    and deliver it here. ``"failed"`` keeps it in the outbox for the next run,
    ``"rejected"`` moves it to the dead letters.
    """
