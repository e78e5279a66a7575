"""The ``[serve]`` table: where `synthetic serve` listens, how often it runs, who may read it.

::

    [serve]
    listen = "127.0.0.1:9464"          # loopback unless told otherwise
    every = "30s"                      # from one round's start to the next
    bearer_token = "${SERVE_TOKEN}"    # or username/password for basic auth

Credentials protect every route but ``/healthz``; they come from ``${VAR}``
and are masked like every other secret.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthetic.alerts.schema import Duration
from synthetic.errors import excerpt
from synthetic.units import parse_duration

DEFAULT_LISTEN = "127.0.0.1:9464"
DEFAULT_EVERY_S = 30.0


class ServeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(
        default=DEFAULT_LISTEN,
        description="host:port the runner serves on (loopback unless told otherwise).",
    )
    every: Duration = Field(
        default=DEFAULT_EVERY_S, description="How often a round starts ('30s'); --every wins."
    )
    bearer_token: str | None = Field(
        default=None,
        min_length=1,
        description="A token every route but /healthz asks for (use ${VAR}).",
    )
    username: str | None = Field(
        default=None, min_length=1, description="Basic auth user, with password."
    )
    password: str | None = Field(
        default=None, min_length=1, description="Basic auth password (use ${VAR})."
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: Duration) -> Duration:
        if parse_duration(value, where="every") <= 0:
            raise ValueError("must be more than 0 s")
        return value

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> ServeModel:
        if self.bearer_token and (self.username or self.password):
            raise ValueError("give bearer_token or username and password, not both")
        if bool(self.username) != bool(self.password):
            raise ValueError("basic auth needs both username and password")
        return self


@dataclass(frozen=True)
class ServeSettings:
    """The ``[serve]`` table, resolved."""

    host: str = "127.0.0.1"
    port: int = 9464
    every_s: float = DEFAULT_EVERY_S
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.bearer_token, self.password) if s)


def resolve_serve(model: ServeModel) -> ServeSettings:
    host, port = parse_listen(model.listen)
    return ServeSettings(
        host=host,
        port=port,
        every_s=parse_duration(model.every, where="every"),
        bearer_token=model.bearer_token,
        username=model.username,
        password=model.password,
    )


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"``, ``"[::1]:9464"`` or ``":9464"`` (loopback) as (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT, like 127.0.0.1:9464 (got {excerpt(text)})")
    host = host.strip("[]") or "127.0.0.1"
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"expected an IP address or localhost (got {excerpt(host)})") from None
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback
