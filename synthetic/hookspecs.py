"""The ``pytest_synthetic_*`` hooks a conftest or plugin may implement.

They run on the controller process only (never on an xdist worker), once the
results are gathered, so an implementation sees every check exactly once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from synthetic.results import CheckResult, RunResult

hookspec = pytest.hookspec


@hookspec
def pytest_synthetic_result(result: CheckResult, config: pytest.Config) -> None:
    """Called for each check's result as it arrives on the controller."""


@hookspec
def pytest_synthetic_run_finished(run: RunResult, config: pytest.Config) -> None:
    """Called once per run after ``results.json`` is written, with every result."""
