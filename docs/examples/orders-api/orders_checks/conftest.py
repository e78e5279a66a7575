"""Fixtures of the Orders API's checks."""

from typing import Any

import pytest

from orders_checks.settings import OrdersSettings, orders_settings
from synthetic import BFFClient, Config


@pytest.fixture(scope="session")
def settings(synthetic_config: Config) -> OrdersSettings:
    return orders_settings(synthetic_config)


@pytest.fixture
def healthz(bff: BFFClient) -> Any:
    """GET /healthz as JSON, fetched once per run however many checks read it."""
    return bff.json("/healthz")
