"""The Customer Portal catalogue's own settings: the ``params`` table of the config.

These are not the framework's: another catalogue has its own (or none). The
defaults are here; this repository's ``pyproject.toml`` sets the portal's values
(``[tool.synthetic.params]`` for every environment, ``[...environments.X.params]``
for one), and a bad one stops the run at collection, naming its key::

    [tool.synthetic.environments.production.params]
    bullmq_queues = ["email", "provisioning"]
    p95_paths = ["/health", "/health/queues"]
    connection_capacity = 500
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthetic import Config, parse_selector, validate_params


class PortalSettings(BaseModel):
    """The checks' settings, validated; unknown keys are refused (a typo would
    otherwise leave a check on its default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bullmq_queues: list[str] = Field(
        default_factory=list,
        description="BullMQ queues with a bullmq.waiting and a bullmq.failed check each.",
    )
    bullmq_prefix: str = Field(default="bull", min_length=1, description="BullMQ's key prefix.")
    health_checks: list[str] = Field(
        default_factory=lambda: ["database", "cache"],
        description="Entries of GET /health with a health.check each; empty: none.",
    )
    integrations: list[str] = Field(
        default_factory=lambda: ["database", "whmcs", "salesforce"],
        description="Entries of GET /auth/health-check with an integration.health each.",
    )
    health_entries: dict[str, str] = Field(
        default_factory=dict,
        description="For a health body of no known shape: endpoint path -> dotted path to its "
        'table of entries, e.g. { "/auth/health-check" = "data.integrations" }.',
    )
    connections_metric: str = Field(
        default="bff_http_active_connections",
        description="A PromQL-style series selector at metrics_url for app.active_connections, "
        'e.g. sum(name{server="public"}).',
    )
    connection_capacity: int | None = Field(
        default=None,
        gt=0,
        description="The connections app.active_connections is a percentage of; unset: skipped.",
    )
    database_disk_bytes: int | None = Field(
        default=None,
        gt=0,
        description="The database disk's size, which db.size is a percentage of (SQL cannot "
        "see it); unset: skipped.",
    )
    dead_tuples_min_rows: int = Field(
        default=1000, ge=0, description="db.dead_tuples ignores tables with fewer rows."
    )
    p95_sample_size: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Requests in the app.response_time_p95 burst.",
    )
    p95_paths: list[str] = Field(
        default_factory=lambda: ["/health"],
        min_length=1,
        description="Paths the p95 burst requests, round robin.",
    )

    @field_validator("health_checks", "integrations")
    @classmethod
    def _entry_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.strip():
                raise ValueError("an entry name is empty")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"entry names listed twice: {', '.join(repr(n[:40]) for n in repeated[:5])}"
            )
        return names

    @field_validator("health_entries")
    @classmethod
    def _entry_paths(cls, paths: dict[str, str]) -> dict[str, str]:
        for endpoint, path in paths.items():
            if not endpoint.startswith("/"):
                raise ValueError(f"{endpoint[:40]!r}: expected an endpoint path like /health")
            if not path or any(not part for part in path.split(".")):
                raise ValueError(
                    f"{_shown(endpoint)}: expected a dotted path to the table of entries, "
                    'like "data.integrations"'
                )
        return paths

    @field_validator("connections_metric")
    @classmethod
    def _selector(cls, value: str) -> str:
        parse_selector(value)  # a malformed selector stops the run at collection, naming the key
        return value

    cache_hit_rate_min_lookups: int = Field(
        default=100,
        ge=0,
        description="cache.hit_rate needs at least this many lookups since the previous run.",
    )


def _shown(text: str) -> str:
    """A key as a one-line message shows it: as written when short and printable."""
    return text if text.isprintable() and len(text) <= 80 else repr(text[:40])


def portal_settings(config: Config) -> PortalSettings:
    """The portal's settings of the selected environment; `ConfigError` naming
    the file and the bad key."""
    return validate_params(config, PortalSettings)
