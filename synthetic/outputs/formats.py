"""A run as text other tools read: a Nagios plugin line, a GitHub job summary,
a check's JUnit properties.

Pure: results in, text out.
"""

from __future__ import annotations

import json
import math
import re

from synthetic.errors import ThresholdError
from synthetic.outputs.summary import short_id
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.text import printable
from synthetic.thresholds import Comparison, Range, Threshold, parse_threshold
from synthetic.units import format_value

# Units of measure Nagios plugins may give a value (Monitoring Plugins
# guidelines); any other unit is left out of the performance data.
_NAGIOS_UOM = {"s": "s", "ms": "ms", "us": "us", "%": "%", "B": "B", "KB": "KB", "MB": "MB"}
MAX_SUMMARY_CHECKS = 3


def junit_properties(result: CheckResult) -> list[tuple[str, str]]:
    """A check's ``<property>`` elements in JUnit XML: severity, value, unit, thresholds.

    JUnit has only passed/failed/error/skipped; these say what the check
    found, for a CI's test view or any JUnit reader.
    """
    fields = {
        "synthetic.severity": result.severity.value,
        "synthetic.metric": result.key,
        "synthetic.value": result.value,
        "synthetic.unit": result.unit,
        "synthetic.warning": result.warning,
        "synthetic.critical": result.critical,
        "synthetic.reason": result.reason,
    }
    return [(name, _property(value)) for name, value in fields.items() if value is not None]


def _property(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def nagios(run: RunResult) -> str:
    """One plugin status line: ``SYNTHETIC CRITICAL - <what> | <perfdata>``.

    The text names the worst checks (at most three); performance data holds
    each numeric check as ``'label'=value[UOM];warn;crit;;`` with its
    thresholds as Nagios ranges where they are plain comparisons or ranges.
    """
    worst = run.worst
    counts = run.counts()
    parts = [
        f"{counts[s.value]} {s.value}"
        for s in (Severity.CRITICAL, Severity.UNKNOWN, Severity.WARNING, Severity.OK)
        if counts[s.value]
    ]
    bad = [c for c in run.worst_first() if c.severity.rank > Severity.OK.rank]
    shown = "; ".join(c.reason for c in bad[:MAX_SUMMARY_CHECKS])
    if len(bad) > MAX_SUMMARY_CHECKS:
        shown += f"; and {len(bad) - MAX_SUMMARY_CHECKS} more"
    if not run.complete:
        shown = "incomplete run" + (f"; {shown}" if shown else "")
    text = f"SYNTHETIC {worst.value.upper()} - {run.environment}: {', '.join(parts) or 'no checks'}"
    if shown:
        text += f": {shown}"
    text = text.replace("|", "/")  # a '|' starts the performance data
    perf = " ".join(filter(None, (perfdata(c) for c in run.checks)))
    return f"{text} | {perf}" if perf else text


def perfdata(check: CheckResult) -> str | None:
    """``'whmcs.queue_size'=57;10;50;;`` (None when the value is not a number)."""
    value = check.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    label = check.key.replace("'", '"').replace("=", ":")
    uom = _NAGIOS_UOM.get(check.unit or "", "")
    warn = _range(check.warning, check.unit)
    crit = _range(check.critical, check.unit)
    return f"'{label}'={_number(value)}{uom};{warn};{crit};;"


def _range(text: str | None, unit: str | None) -> str:
    """A threshold as a Nagios range: ``> 50`` is ``50``, ``< 80`` is ``80:``."""
    if not text:
        return ""
    try:
        threshold: Threshold = parse_threshold(text, unit=unit)
    except ThresholdError:
        return ""
    if isinstance(threshold, Range):
        start = "~" if threshold.start is None else _number(threshold.start)
        end = "" if threshold.end is None else _number(threshold.end)
        body = end if start == "0" else f"{start}:{end}"
        return ("@" if threshold.inside else "") + body
    if isinstance(threshold, Comparison) and isinstance(threshold.operand, int | float):
        limit = _number(threshold.operand)
        if threshold.op in (">", ">="):
            return f"~:{limit}"
        if threshold.op in ("<", "<="):
            return f"{limit}:"
    return ""


def _number(value: float) -> str:
    return re.sub(r"\.0$", "", f"{value:.6g}") if isinstance(value, float) else str(value)


_ICON = {
    Severity.CRITICAL: "🔴",
    Severity.UNKNOWN: "🟣",
    Severity.WARNING: "🟡",
    Severity.OK: "🟢",
    Severity.SKIPPED: "⚪",
}


def github_summary(run: RunResult) -> str:
    """A Markdown job summary: the headline, then a table of checks, worst first."""
    counts = ", ".join(f"{n} {s}" for s, n in run.counts().items() if n)
    lines = [
        f"### {_ICON[run.worst]} synthetic: {run.worst.value.upper()} ({run.environment})",
        "",
        f"{counts or 'no checks'} · run `{run.run_id}`"
        + ("" if run.complete else " · **incomplete**"),
        "",
        "| severity | check | value | warning | critical | reason |",
        "|---|---|---|---|---|---|",
    ]
    for check in run.worst_first():
        value = "-" if check.value is None else format_value(check.value, check.unit)
        cells = (
            f"{_ICON[check.severity]} {check.severity.value}",
            f"`{short_id(check.id)}`",
            value,
            check.warning or "-",
            check.critical or "-",
            check.reason,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for error in run.errors:
        lines.append(f"\n> error: {_cell(error)}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return printable(text, 1000).replace("|", "\\|")
