"""A run's results as Prometheus metrics: a textfile for node_exporter, or a Pushgateway push.

The exposition is prometheus_client's own (`write_to_textfile`,
`push_to_gateway`); this module only decides the metrics::

    synthetic_check_value              check labels  numeric values only
    synthetic_check_severity           check labels  0 ok, 1 warning, 2 critical, 3 unknown
    synthetic_check_duration_seconds   check labels
    synthetic_run_timestamp_seconds    environment   when the run finished (epoch)
    synthetic_run_worst_severity       environment   0-3, as above
    synthetic_run_complete             environment   0 when interrupted or a check was lost
    synthetic_checks                   environment, severity   checks per severity

Check labels are ``environment``, ``check`` (the check id), ``metric`` and
the check's own labels as ``label_<name>``. A run with a ``location``
(``--location``) adds a ``location`` label to every series and to the
Pushgateway's grouping key, so the runners of several places keep their own.

A check's own labels are real labels, so ``queue="email"`` is
``label_queue="email"`` (kube-state-metrics does the same with Kubernetes
labels): the prefix keeps them from clashing with ``environment``, ``check``,
``metric`` and the ``job``/``instance`` that Prometheus and the Pushgateway
add, and makes any name valid once other characters are replaced by ``_``.
Prometheus wants one set of label names per family, so every check series
carries every ``label_*`` name of the run, empty where its check has no such
label; an empty label is the same as no label to Prometheus (node_exporter's
textfile collector fills in missing labels the same way). Skipped checks have
no check series; they are counted in ``synthetic_checks``.
"""

from __future__ import annotations

import datetime
import decimal
import http.client
import math
import re
import urllib.error
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler

from synthetic.errors import ExportError
from synthetic.redact import Masker
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.text import printable

__all__ = ["prometheus_labels", "push", "registry", "write_textfile"]

CHECK_LABELS = ("environment", "check", "metric")
LABEL_PREFIX = "label_"
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_MAX_DETAIL = 200


def prometheus_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """A check's own labels as valid, distinct Prometheus label names (``label_<name>``).

    Characters other than letters, digits and ``_`` become ``_``; when two
    labels end up with one name (``a.b`` and ``a-b``), the later in sorted
    order gets ``_2``, ``_3``, ...
    """
    named: dict[str, str] = {}
    for key in sorted(labels):
        base = LABEL_PREFIX + _INVALID_LABEL_CHARS.sub("_", key)
        name, n = base, 1
        while name in named:
            n += 1
            name = f"{base}_{n}"
        named[name] = str(labels[key])
    return named


def registry(run: RunResult) -> CollectorRegistry:
    """A fresh registry holding ``run``'s metrics (see the module docstring)."""
    reg = CollectorRegistry(auto_describe=True)
    measured = [c for c in run.checks if c.severity is not Severity.SKIPPED]
    own = {id(c): prometheus_labels(c.labels) for c in measured}
    extra = sorted({name for labels in own.values() for name in labels})
    run_labels = _run_labels(run)
    names = [*CHECK_LABELS, *extra, *run_labels.keys() - {"environment"}]

    value = Gauge(
        "synthetic_check_value",
        "A check's measured value, in its metric's unit (numeric values only).",
        names,
        registry=reg,
    )
    severity = Gauge(
        "synthetic_check_severity",
        "A check's severity: 0 ok, 1 warning, 2 critical, 3 unknown.",
        names,
        registry=reg,
    )
    duration = Gauge(
        "synthetic_check_duration_seconds",
        "How long a check took to run.",
        names,
        registry=reg,
    )
    for check in measured:
        series = dict.fromkeys(extra, "")
        series.update(own[id(check)])
        series.update(run_labels, check=check.id, metric=check.metric)
        number = _number(check)
        if number is not None:
            value.labels(**series).set(number)
        severity.labels(**series).set(check.severity.nagios_code)
        duration.labels(**series).set(check.duration_ms / 1000)

    Gauge(
        "synthetic_run_timestamp_seconds",
        "When the run finished, in seconds since the epoch.",
        list(run_labels),
        registry=reg,
    ).labels(**run_labels).set(_epoch(run.finished_at))
    Gauge(
        "synthetic_run_worst_severity",
        "The run's worst severity: 0 ok, 1 warning, 2 critical, 3 unknown.",
        list(run_labels),
        registry=reg,
    ).labels(**run_labels).set(run.worst.nagios_code)
    Gauge(
        "synthetic_run_complete",
        "1 when every check ran to a result, 0 when the run was interrupted or lost a check.",
        list(run_labels),
        registry=reg,
    ).labels(**run_labels).set(1 if run.complete else 0)
    counts = Gauge(
        "synthetic_checks",
        "Checks in the run, by severity.",
        [*run_labels, "severity"],
        registry=reg,
    )
    for name, count in run.counts().items():
        counts.labels(**run_labels, severity=name).set(count)
    return reg


def _run_labels(run: RunResult) -> dict[str, str]:
    """``environment``, and ``location`` when the run names one."""
    labels = {"environment": run.environment}
    if run.location:
        labels["location"] = run.location
    return labels


def write_textfile(run: RunResult, path: Path) -> None:
    """Write ``run``'s metrics to ``path`` for node_exporter's textfile collector.

    The file is written beside ``path`` and renamed into place, so the
    collector never reads half a file. ``path`` must end in ``.prom``, the
    only files the collector reads.
    """
    path = Path(path)
    if path.suffix != ".prom":
        raise ExportError(
            f"cannot write {path}: node_exporter's textfile collector reads only *.prom files"
        )
    metrics = registry(run)
    try:
        write_to_textfile(str(path), metrics)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {_one_line(exc.strerror or str(exc))}") from None


def push(run: RunResult, url: str, *, job: str = "synthetic", timeout_s: float = 10.0) -> None:
    """Push ``run``'s metrics to the Pushgateway at ``url``, replacing its group.

    The group is ``job`` and ``environment``, so each environment keeps its
    own metrics; PUT replaces the whole group, so a check that is gone from
    the run is gone from the gateway. A user and password in ``url``
    (``http://user:pw@host:9091``) are sent as basic auth; a bare
    ``host:9091`` means ``http://host:9091``. Any failure is an
    `ExportError` naming the URL with its password masked.
    """
    if "://" not in url:  # "host:9091", as prometheus_client accepts it
        url = f"http://{url}"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed "[" of an IPv6 host
        parts = urlsplit("")
    masker = Masker([unquote(parts.password)] if parts.password else [])
    shown = masker.text(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExportError(f"cannot push to Pushgateway {shown}: not an http:// or https:// URL")
    if not timeout_s > 0:
        raise ExportError(f"cannot push to Pushgateway {shown}: timeout_s must be positive")
    metrics = registry(run)
    try:
        gateway, handler = _gateway_and_handler(parts)
        push_to_gateway(
            gateway,
            job=job,
            registry=metrics,
            grouping_key=_run_labels(run),
            timeout=timeout_s,
            handler=handler,
        )
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = masker.text(_one_line(_reason(exc)))
        raise ExportError(f"cannot push to Pushgateway {shown}: {reason}") from None


def _gateway_and_handler(parts: SplitResult) -> tuple[str, Callable[..., Callable[[], None]]]:
    """The URL without its credentials, and a handler sending them as basic auth."""
    if parts.username is None and parts.password is None:
        return urlunsplit(parts), default_handler
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    gateway = urlunsplit(parts._replace(netloc=netloc))
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")

    def handler(
        url: str,
        method: str,
        timeout: float | None,
        headers: list[tuple[str, str]],
        data: bytes,
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password)

    return gateway, handler


def _reason(exc: BaseException) -> str:
    """What went wrong, as a person would say it: the status and body, or the socket error."""
    if isinstance(exc, urllib.error.HTTPError):
        try:
            body = exc.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            body = ""
        status = f"HTTP {exc.code} {exc.reason}"
        body = body.strip()
        return f"{status} ({body})" if body and body != str(exc.reason) else status
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, OSError) and reason.strerror:
            return reason.strerror
        return str(reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _one_line(text: str) -> str:
    return printable(text, _MAX_DETAIL)


def _number(check: CheckResult) -> float | None:
    """The check's value as a finite float, or None when it is not a number."""
    raw = check.value
    if isinstance(raw, bool) or not isinstance(raw, int | float | decimal.Decimal):
        return None
    try:
        number = float(raw)
    except (OverflowError, ValueError):  # a huge int, a signalling NaN
        return None
    return number if math.isfinite(number) else None


def _epoch(timestamp: str) -> float:
    """An ISO 8601 time (``2024-05-01T12:00:00.000Z``) in seconds since the epoch; naive is UTC."""
    try:
        moment = datetime.datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        raise ExportError(f"run finished_at {timestamp!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
