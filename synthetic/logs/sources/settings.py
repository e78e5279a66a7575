"""The sub-tables of ``logs`` that name a backend: ``loki``, ``cloudwatch``, ``prometheus``.

::

    [environments.production.logs]
    source = "loki"

    [environments.production.logs.loki]
    url = "https://loki.example.com"
    selector = '{service="customer-portal-bff"}'
    tenant = "portal"
    username = "${LOKI_USER}"
    password = "${LOKI_PASSWORD}"          # or bearer = "${LOKI_TOKEN}"

Values from ``${VAR}`` are masked in every output (`synthetic.config`); the
URLs' passwords too.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from synthetic.measure.selector import SeriesSelector, parse_selector

SOURCES = ("file", "loki", "cloudwatch", "prometheus")
Source = Literal["file", "loki", "cloudwatch", "prometheus"]
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LOG_GROUP = re.compile(r"^[\w#/.\-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def _http_url(value: str) -> str:
    # Empty means not configured (``${VAR:-}``): the source that needs it says so.
    if value and not value.lower().startswith(("http://", "https://")):
        scheme = value.split("://", 1)[0] + "://" if "://" in value else "no scheme"
        raise ValueError(f"expected an http:// or https:// URL (got {scheme})")
    return value


def _label_name(value: str) -> str:
    if not _LABEL_NAME.match(value):
        raise ValueError(f"expected a label name like 'status' (got {value[:40]!r})")
    return value


def stream_selector(text: str) -> SeriesSelector:
    """A Loki stream selector (``{service="bff"}``) as matchers; a `ValueError` when
    it is not one. The PromQL selector grammar, without a metric name."""
    if not text.strip().startswith("{"):
        raise ValueError("expected a stream selector like '{service=\"orders-api\"}'")
    parsed = parse_selector("stream" + text.strip())
    if not parsed.matchers:
        raise ValueError("a stream selector needs at least one matcher")
    if all(
        m.op in ("!=", "!~") or (m.op == "=~" and m.value in ("", ".*")) for m in parsed.matchers
    ):
        raise ValueError("a stream selector needs at least one matcher that selects (= or =~)")
    return parsed


def _stream_selector(value: str) -> str:
    stream_selector(value)
    return value


def metric_selector(text: str) -> SeriesSelector:
    """A PromQL series selector without aggregation: ``name{label="v"}``."""
    parsed = parse_selector(text)
    if parsed.aggregation is not None:
        raise ValueError(f"expected a series selector without {parsed.aggregation}(...)")
    return parsed


def _metric_selector(value: str) -> str:
    metric_selector(value)
    return value


def label_matchers(text: str) -> SeriesSelector:
    """Label matchers alone (``outcome="error"``), as a selector of no name."""
    parsed = parse_selector("matchers{" + text + "}")
    if not parsed.matchers:
        raise ValueError('expected label matchers like outcome="error"')
    return parsed


def _label_matchers(value: str) -> str:
    label_matchers(value)
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
LabelName = Annotated[str, AfterValidator(_label_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Auth(_Model):
    """Basic auth (``username`` and ``password``) or a bearer token; a tenant header."""

    tenant: str | None = Field(
        default=None, description="Sent as X-Scope-OrgID (multi-tenant Loki, Mimir, Cortex)."
    )
    username: str | None = Field(default=None, description="Basic auth, with password.")
    password: str | None = Field(default=None, description="Basic auth; masked everywhere.")
    bearer: str | None = Field(
        default=None, description="A bearer token instead of basic auth; masked everywhere."
    )

    @model_validator(mode="after")
    def _one_way(self) -> _Auth:
        if self.bearer and (self.username or self.password):
            raise ValueError("give username and password, or bearer, not both")
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together")
        return self

    def headers(self) -> dict[str, str]:
        found = {"X-Scope-OrgID": self.tenant} if self.tenant else {}
        if self.bearer:
            found["Authorization"] = f"Bearer {self.bearer}"
        return found

    def basic(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None


class LokiSettings(_Auth):
    """Where the lines are in Loki, and which fields are labels there already."""

    url: HttpUrl = Field(description="Loki's base URL (/loki/api/v1/query is appended).")
    selector: Annotated[str, AfterValidator(_stream_selector)] = Field(
        description="The service's stream selector, e.g. '{service=\"customer-portal-bff\"}' "
        "(the portal's)."
    )
    # A field the agent made a label (or structured metadata): field path -> label,
    # e.g. { level = "level" }. Read as that label instead of from the line's JSON.
    labels: dict[str, LabelName] = Field(
        default_factory=dict,
        description='Fields the agent made labels: field path -> label, e.g. { level = "level" }.',
    )

    @model_validator(mode="after")
    def _label_fields(self) -> LokiSettings:
        for path in self.labels:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"labels: {path[:40]!r} is not a field path like 'res.statusCode'")
        return self


class CloudWatchSettings(_Model):
    """A Logs Insights log group; credentials from boto3's usual chain (environment,
    profile, role)."""

    log_group: str = Field(default="", description="The log group, e.g. /ecs/orders-api.")
    region: str | None = Field(default=None, description="Its AWS region, e.g. eu-west-1.")
    endpoint_url: HttpUrl | None = Field(
        default=None, description="Another endpoint: a VPC endpoint, or a stand-in."
    )
    poll_s: float = Field(
        default=1.0, gt=0, le=30, description="Seconds between get_query_results calls."
    )

    @model_validator(mode="after")
    def _names(self) -> CloudWatchSettings:
        if self.log_group and not _LOG_GROUP.match(self.log_group):
            raise ValueError("log_group: expected a log group name like /ecs/orders-api")
        if self.region and not _REGION.match(self.region):
            raise ValueError("region: expected an AWS region like eu-west-1")
        return self


class PrometheusSettings(_Auth):
    """What the BFF exports as metrics, read with PromQL."""

    url: HttpUrl = Field(description="Prometheus's base URL (/api/v1/query is appended).")
    requests_metric: Annotated[str, AfterValidator(_metric_selector)] = Field(
        default="http_requests_total",
        description='A counter of answered requests, labelled by status ("500" or "5xx").',
    )
    status_label: LabelName = Field(default="status", description="requests_metric's status label.")
    duration_histogram: Annotated[str, AfterValidator(_metric_selector)] = Field(
        default="http_request_duration_seconds",
        description="The requests' duration histogram, named without _bucket.",
    )
    dependency_histogram: Annotated[str, AfterValidator(_metric_selector)] = Field(
        default="bff_dependency_duration_seconds",
        description="The dependency calls' duration histogram, named without _bucket.",
    )
    dependency_label: LabelName = Field(
        default="dependency", description="The histogram's label naming the dependency."
    )
    dependency_failed: Annotated[str, AfterValidator(_label_matchers)] = Field(
        default='outcome="error"',
        description="Label matchers picking the failed calls among the histogram's series.",
    )
    duration_unit: Literal["s", "ms"] = Field(
        default="s", description="The unit of both histograms."
    )
    errors_metric: Annotated[str, AfterValidator(_metric_selector)] | None = Field(
        default=None,
        description="A counter of error log lines for logs.error_count; unset: that check is "
        "skipped.",
    )
