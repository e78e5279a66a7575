"""What a backend answered, as the answers the log checks ask for.

Every backend reads into one plain JSON document (so a run reads the backend
once, whichever xdist worker asks first, like the files' analysis)::

    {"about": {"backend": "loki", "described": "Loki {service=\\"bff\\"}", ...},
     "requests": {"count": 120, "errors": 3, "query": "..."},      # rate window
     "lines": {"count": 400, "errors": 2, "query": "..."},         # recent window
     "recent": {"count": 40, "slow": 1, "p95": 812.0, "query": "...", "method": "..."},
     "dependencies": {"whmcs": {"calls": 8, "failed": 2, "recent": 3, "p95": 140.0}},
     "evidence": {"latest_errors": [...], "slowest": [...]}}

A part a backend cannot give is ``{"missing": "why"}`` (the check is skipped,
saying why); a count of 0 where traffic is expected is `NoLogData` naming the
backend and its selector, never a green zero.
"""

from __future__ import annotations

from typing import Any

from synthetic.errors import MeasurementError, NoLogData, NotAvailable
from synthetic.logs.settings import LogsSettings
from synthetic.results import Measurement


def missing(why: str) -> dict[str, Any]:
    return {"missing": why}


class BackendReadings:
    """The `LogReadings` of a backend's document."""

    def __init__(self, document: dict[str, Any], settings: LogsSettings) -> None:
        if "error" in document:
            raise MeasurementError(str(document["error"]))
        self.document = document
        self.settings = settings
        self.about: dict[str, Any] = dict(document.get("about") or {})
        self.described = str(self.about.get("described") or self.about.get("backend"))

    def _part(self, name: str, key: str) -> dict[str, Any]:
        part = self.document.get(name)
        if not isinstance(part, dict):
            raise MeasurementError(f"{self.described}: no {name} in the reading")
        if "missing" in part:
            raise NotAvailable(f"{self.described}: {part['missing']}", key=key)
        if "error" in part:
            raise MeasurementError(str(part["error"]))
        return part

    def _evidence(self, **extra: Any) -> dict[str, Any]:
        return {**{k: v for k, v in extra.items() if v is not None}, "source": self.about}

    def _latest(self, kind: str) -> list[Any]:
        found = (self.document.get("evidence") or {}).get(kind)
        return found if isinstance(found, list) else []

    def error_rate(self) -> Measurement:
        minutes = self.settings.rate_window_minutes
        part = self._part("requests", "requests_metric")
        if not part["count"]:
            raise NoLogData(f"no requests in {self.described} in the last {minutes} min")
        evidence = self._evidence(
            window_min=minutes, total=part["count"], failed=part["errors"], query=part.get("query")
        )
        return Measurement(part["errors"] / part["count"] * 100, unit="%", evidence=evidence)

    def error_count(self) -> Measurement:
        minutes = self.settings.recent_window_minutes
        part = self._part("lines", "errors_metric")
        if part.get("count") == 0:
            raise NoLogData(
                f"no log lines in {self.described} in the last {minutes} min to count errors in"
            )
        evidence = self._evidence(
            window_min=minutes,
            lines=part.get("count"),
            query=part.get("query"),
            latest_errors=self._latest("latest_errors"),
        )
        return Measurement(part["errors"], unit="lines", evidence=evidence)

    def response_time_p95(self, series: str = "requests") -> Measurement:
        minutes = self.settings.recent_window_minutes
        if series == "requests":
            part = self._part("recent", "duration_histogram")
            what = "requests with a duration"
        else:
            name = series.removeprefix("dep:")
            part = (self.document.get("dependencies") or {}).get(name) or {}
            what = f"calls to {name} with a duration"
        p95 = part.get("p95")
        if p95 is None:
            raise NoLogData(f"no {what} in {self.described} in the last {minutes} min")
        evidence = self._evidence(
            window_min=minutes,
            count=part.get("recent", part.get("count")),
            method=part.get("method") or self.about.get("p95_method"),
            query=part.get("p95_query") or part.get("query"),
            slowest=self._latest("slowest") if series == "requests" else None,
        )
        return Measurement(round(float(p95), 1), unit="ms", evidence=evidence)

    def slow_requests(self) -> Measurement:
        minutes = self.settings.recent_window_minutes
        part = self._part("recent", "duration_histogram")
        if part.get("slow") is None:
            raise NotAvailable(f"{self.described}: {part.get('slow_missing')}", key="slow_ms")
        if not part.get("count"):
            raise NoLogData(f"no requests in {self.described} in the last {minutes} min")
        evidence = self._evidence(
            window_min=minutes,
            slower_than_ms=self.settings.slow_ms,
            requests=part["count"],
            query=part.get("slow_query"),
            slowest=self._latest("slowest"),
        )
        return Measurement(part["slow"], unit="requests", evidence=evidence)

    def external_error_rate(self, dependency: str | None = None) -> Measurement:
        minutes = self.settings.rate_window_minutes
        found = self.document.get("dependencies") or {}
        if "missing" in found:
            raise NotAvailable(f"{self.described}: {found['missing']}", key="dependency_histogram")
        names = [dependency] if dependency is not None else sorted(found)
        parts = [found.get(n) or {} for n in names]
        calls = sum(p.get("calls", 0) for p in parts)
        failed = sum(p.get("failed", 0) for p in parts)
        what = f"calls to {dependency}" if dependency else "external calls"
        if not calls:
            raise NoLogData(f"no {what} in {self.described} in the last {minutes} min")
        evidence = self._evidence(
            window_min=minutes,
            calls=calls,
            failed=failed,
            per_dependency={n: (found.get(n) or {}).get("calls", 0) for n in names},
            query=self.document.get("calls_query"),
            latest_errors=[
                e
                for e in self._latest("latest_errors")
                if dependency is None or e.get("dependency") == dependency
            ]
            or None,
        )
        return Measurement(failed / calls * 100, unit="%", evidence=evidence)
