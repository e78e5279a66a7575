"""The Orders API catalogue's own settings: the config's ``params`` table."""

from pydantic import BaseModel, ConfigDict

from synthetic import Config, validate_params


class OrdersSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_metric: str = "orders_queue_depth"  # the gauge of orders waiting to be packed


def orders_settings(config: Config) -> OrdersSettings:
    """A bad key stops the run at collection, naming it (``params.queue_metric``)."""
    return validate_params(config, OrdersSettings)
