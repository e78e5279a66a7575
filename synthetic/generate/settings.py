"""The ``[generate]`` table: how `synthetic generate` presents the catalogue.

What a monitoring guide calls things, which are the catalogue's and not the
framework's: the names of its alarms and monitors, its dashboards and their
panels, the Loki stream its service logs to, the Prometheus job that scrapes
it. Unset, the artifacts are named after the checks: one CloudWatch alarm
per check and level (``WhmcsQueueSizeCritical``), one DataDog monitor per
check named as the check, and one Grafana dashboard of every check with a
row per component. The Customer Portal's config gives its guide's::

    [generate.cloudwatch_alarms]
    "whmcs.queue_size:critical" = "QueueBacklog"

    [generate.datadog_monitors]
    "whmcs.queue_size" = "Queue Depth"

    [[generate.grafana_dashboards]]
    uid = "queues"
    title = "Queues"
    panels = [{ title = "Queue Depths", metrics = ["whmcs.queue_size", "bullmq.waiting"] }]

Only pydantic here: the config is validated without the generate extra.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PanelKind = Literal["timeseries", "stat", "gauge", "loki-rate", "loki-errors", "slowest-queries"]

_ALARM_NAME = re.compile(r"^[A-Za-z0-9]{1,200}$")  # a CloudFormation logical id
_UID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # a Grafana uid, and a file name
LEVELS = ("warning", "critical")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PanelModel(_Model):
    """A panel: its title, its kind, and the metrics it shows (each check of them one
    query); a ``loki-*`` or ``slowest-queries`` panel reads Loki or PostgreSQL instead."""

    title: str = Field(min_length=1, max_length=120, description="The panel's title.")
    kind: PanelKind = Field(
        default="timeseries",
        description="timeseries, stat or gauge of the metrics; loki-rate (request lines per "
        "second), loki-errors (error lines), slowest-queries (pg_stat_statements).",
    )
    metrics: tuple[str, ...] = Field(
        default=(), description="The metric ids it shows (every check of each)."
    )
    description: str = Field(default="", max_length=500, description="Shown under its title.")


class DashboardModel(_Model):
    """A dashboard of the guide's, with its panels in order."""

    uid: str = Field(description="Grafana's uid, and the file grafana/<uid>.json.")
    title: str = Field(min_length=1, max_length=120, description="Its title.")
    panels: list[PanelModel] = Field(description="Its panels, two to a row.")

    @field_validator("uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        if not _UID.match(value) or value == "checks":
            raise ValueError(
                "expected lowercase letters, digits and dashes, at most 40, not 'checks' "
                f"(got {value[:40]!r})"
            )
        return value


class GenerateModel(_Model):
    """How ``synthetic generate`` presents the catalogue: the names and dashboards a
    monitoring guide gives it; unset, everything is named after the checks."""

    cloudwatch_alarms: dict[str, str] = Field(
        default_factory=dict,
        description='Alarm names by check and level: "whmcs.queue_size:critical" = '
        '"QueueBacklog" (a check with labels: \'health.check{name="cache"}:critical\').',
    )
    datadog_monitors: dict[str, str] = Field(
        default_factory=dict,
        description='Monitor names by check: "whmcs.queue_size" = "Queue Depth".',
    )
    grafana_dashboards: list[DashboardModel] = Field(
        default_factory=list,
        description="Dashboards with chosen panels; the checks they do not show go on "
        "the Checks dashboard.",
    )
    log_stream: str = Field(
        default='job=~".+"',
        max_length=500,
        description="The Loki stream selector of the service's lines, for the dashboards' "
        'Loki panels, e.g. service="customer-portal-bff".',
    )
    scrape_job: str = Field(
        default="bff",
        pattern=r"^[A-Za-z0-9_-]{1,60}$",
        description="The Prometheus job that scrapes the service's metrics_url.",
    )

    @field_validator("cloudwatch_alarms")
    @classmethod
    def _alarms(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            _, _, level = key.rpartition(":")
            if level not in LEVELS or not key.rpartition(":")[0]:
                raise ValueError(
                    f"expected 'check:warning' or 'check:critical' as the key (got {key[:60]!r})"
                )
            if not _ALARM_NAME.match(name):
                raise ValueError(f"alarm names are letters and digits (got {name[:60]!r})")
        return value

    @field_validator("grafana_dashboards")
    @classmethod
    def _distinct(cls, value: list[DashboardModel]) -> list[DashboardModel]:
        uids = [dashboard.uid for dashboard in value]
        if len(uids) != len(set(uids)):
            raise ValueError("each dashboard needs a uid of its own")
        return value

    def alarm(self, check: str, level: str) -> str | None:
        """The alarm name given to ``check`` at ``level``, if any."""
        return self.cloudwatch_alarms.get(f"{check}:{level}")

    def alarms(self) -> list[tuple[str, str, str]]:
        """(check, level, alarm name) for each named alarm, sorted."""
        found = []
        for key, name in self.cloudwatch_alarms.items():
            check, _, level = key.rpartition(":")
            found.append((check, level, name))
        return sorted(found)
