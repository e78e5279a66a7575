"""The markers of a check, documented once: registered by the plugin (so
``pytest --markers`` and ``--strict-markers`` know them) and read by `synthetic.spec`.

Kept apart from `synthetic.spec` so registering them costs no import: the
plugin registers them in every pytest run of the environment.
"""

from __future__ import annotations

MARKER_DOCS = {
    "metric": (
        "metric(id=None, *, unit=None, component=None, runbook=None, priority='P3', "
        "unreachable='critical', description=None, sustain=None, depends_on=()): the metric a "
        "check measures. "
        "`id` names it (default: the function name without check_); `unit` is the unit of the "
        "returned value and of threshold numbers; `runbook` is a URL or a name resolved through "
        "[runbooks] in the config; `priority` is P1..P4; `unreachable` is the severity of a "
        "connection error or timeout (critical, warning or unknown); `sustain` ('2m') is how long "
        "a breach must last, across runs, before it alerts; `depends_on` names systems (bff, "
        "redis, postgres, logs) whose outage inhibits this check's alert. May also be set on a "
        "module or class to give defaults to its checks."
    ),
    "warning": (
        "warning(expr): the WARNING condition, e.g. '> 10', '>= 2s', \"== 'degraded'\", "
        "\"in ['a', 'b']\", a Nagios range ('10', '10:', '~:10', '10:20', '@10:20') or a "
        "callable predicate."
    ),
    "critical": (
        "critical(expr): the CRITICAL condition, evaluated before WARNING; same syntax as "
        "warning. A critical breach fails the check."
    ),
}
