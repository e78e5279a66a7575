"""The open incidents and active silences, read from the alert store after each round.

The alert store is the alerting's (`synthetic.alerts.store`): the same one
`run` decides in, the dry run's file when alerts are a dry run. Read once
per round by the runner, never by a page view; a store that cannot be read
is a one-line warning on the page.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from synthetic.config import Config
from synthetic.outcome import one_line
from synthetic.serve.view import Incident, SilenceView


def read_alerts(
    config: Config, mode: str, results_dir: Path
) -> tuple[tuple[Incident, ...], tuple[SilenceView, ...], dict[str, Any], str | None]:
    """(open incidents worst first, active silences, what each location saw last,
    a warning or None)."""
    if mode == "off":
        return (), (), {}, None
    from synthetic.alerts.pipeline import open_store_for
    from synthetic.alerts.quorum import matrix
    from synthetic.alerts.settings import Silence

    now = time.time()
    silences = [_silence(s.to_json(), "config") for s in config.alerts.silences if s.until > now]
    try:
        store = open_store_for(config, mode, results_dir)
        try:
            document = store.read()
        finally:
            store.close()
    except Exception as exc:  # the page says so; the round is not affected
        why = config.masker.text(one_line(f"{type(exc).__name__}: {exc}"))
        return (), tuple(silences), {}, f"alerts: cannot read the alert store: {why}"
    for data in document.get("silences", []) or []:
        try:
            silence = Silence.from_json(data)
        except (KeyError, TypeError, ValueError):
            continue
        if silence.until > now:
            silences.append(_silence(silence.to_json(), "store"))
    incidents = [
        _incident(key, value)
        for key, value in (document.get("incidents") or {}).items()
        if isinstance(value, dict) and value.get("active")
    ]
    rank = {"critical": 0, "warning": 1, "info": 2}
    incidents.sort(key=lambda i: (rank.get(i.severity, 3), i.key))
    where = matrix(document, config.alerts, now)
    return tuple(incidents), tuple(silences), where if where["locations"] else {}, None


def _incident(key: str, data: dict[str, Any]) -> Incident:
    found = data.get("facts")
    facts: dict[str, Any] = found if isinstance(found, dict) else {}
    opened = data.get("opened_at")
    return Incident(
        key=str(key),
        severity=str(data.get("severity") or "critical"),
        summary=str(facts.get("summary") or key),
        check_id=facts.get("check_id"),
        runbook=facts.get("runbook"),
        opened_at=float(opened) if isinstance(opened, int | float) else None,
        flapping=bool(data.get("flapping")),
    )


def _silence(data: dict[str, Any], source: str) -> SilenceView:
    return SilenceView(
        id=str(data.get("id") or ""),
        until=float(data.get("until") or 0),
        reason=str(data.get("reason") or ""),
        matchers={k: tuple(v) for k, v in (data.get("matchers") or {}).items()},
        source=source,
    )
