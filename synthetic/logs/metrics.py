"""The log-derived metrics, read from one run's analysis.

Windows are whole minutes ending with the current one: "the last 5
minutes" is this minute and the four before it.
"""

from __future__ import annotations

from typing import Any

from synthetic.errors import MeasurementError, NoLogData
from synthetic.logs.aggregate import RELATIVE_ACCURACY, Aggregates, Tally
from synthetic.logs.evidence import latest, slowest
from synthetic.logs.settings import LogsSettings
from synthetic.results import Measurement


class LogMetrics:
    """What the log checks ask of the analysis, each answer a `Measurement`."""

    def __init__(self, document: dict[str, Any], settings: LogsSettings) -> None:
        if "error" in document:
            raise MeasurementError(str(document["error"]))
        self.settings = settings
        self.run: dict[str, Any] = document["run"]
        self.state: dict[str, Any] = document["state"]
        self.aggregates = Aggregates.from_json(self.state.get("minutes"))
        self.now_minute = int(self.run["now_ms"]) // 60_000
        shape = self.run.get("shape") or {}
        self.shape: dict[str, Any] = shape if isinstance(shape, dict) else {}
        self.about = {
            "computed_by": document.get("computed_by"),
            "shape": self.shape.get("described"),
            "own_lines_left_out": self.run.get("own", 0),
            "bytes_read": self.run.get("bytes_read"),
            "lines_read": self.run.get("lines"),
            "skipped": {
                k: self.run.get(k, 0)
                for k in ("skipped", "untimed", "future", "outside_window", "duplicates")
            },
            "files": {
                path: {k: v for k, v in report.items() if k != "error"}
                for path, report in self.run.get("files", {}).items()
            },
        }

    def _skipped_summary(self) -> str:
        skipped = {k: v for k, v in self.about["skipped"].items() if v}
        if not skipped:
            return f"{self.about['lines_read'] or 0} lines read this run"
        return "read this run: " + ", ".join(
            f"{v} {k.replace('_', ' ')}" for k, v in skipped.items()
        )

    def unmapped(self, *roles: str) -> str | None:
        """Why nothing could be read, when a mapped field of ``roles`` matched no line
        since the mapping was set (with the keys the lines do have); else None."""
        hits = self.state.get("hits") or {}
        fields = self.shape.get("roles") or {}
        missing = [r for r in roles if r in fields and not hits.get(r)]
        if not missing or not self._tally("lines", self.settings.longest_window).count:
            return None
        keys = ", ".join(self.shape.get("keys_seen") or []) or "none"
        named = " or ".join(f"'{fields[r]}' (logs.{r})" for r in missing)
        return (
            f"no line has {named}; shape {self.shape.get('described', '?')}; "
            f"top-level keys seen: {keys}"
        )

    def _no_data(self, message: str, *roles: str) -> MeasurementError:
        """NoLogData, or a plain MeasurementError naming the field when one maps nothing."""
        why = self.unmapped(*roles)
        return MeasurementError(f"{message}: {why}") if why else NoLogData(message)

    def file_errors(self) -> list[str]:
        return [r["error"] for r in self.run.get("files", {}).values() if r.get("error")]

    def _tally(self, series: str, minutes: int) -> Tally:
        return self.aggregates.tally(series, self.now_minute, minutes)

    def _evidence(self, **extra: Any) -> dict[str, Any]:
        return {**extra, "analysis": self.about}

    def _since(self, minutes: int) -> int:
        return (self.now_minute - minutes + 1) * 60_000

    def _rate(self, series: str, what: str, roles: tuple[str, ...]) -> Measurement:
        minutes = self.settings.rate_window_minutes
        tally = self._tally(series, minutes)
        if tally.count == 0:
            raise self._no_data(f"no {what} in the logs in the last {minutes} min", *roles)
        evidence = self._evidence(window_min=minutes, total=tally.count, failed=tally.errors)
        return Measurement(tally.errors / tally.count * 100, unit="%", evidence=evidence)

    def error_rate(self) -> Measurement:
        """Requests answered with a 5xx among all requests, in the rate window."""
        return self._rate("requests", "request lines", ("requests.status",))

    def error_count(self) -> Measurement:
        """Lines of level >= error_level in the recent window."""
        minutes = self.settings.recent_window_minutes
        tally = self._tally("lines", minutes)
        if tally.count == 0:
            # Zero errors in a log that said nothing is not "ok": the BFF logs
            # every request, so silence is a stopped logger, a wrong path or
            # a time field it cannot read (see the skipped counts).
            raise NoLogData(
                f"no log lines in the last {minutes} min to count errors in "
                f"({self._skipped_summary()})"
            )
        errors = latest(self.state.get("errors", []), since_ms=self._since(minutes))
        evidence = self._evidence(window_min=minutes, lines=tally.count, latest_errors=errors)
        return Measurement(tally.errors, unit="lines", evidence=evidence)

    def response_time_p95(self, series: str = "requests") -> Measurement:
        """p95 duration of ``series`` (``requests``, ``dep:<name>``) in the recent window."""
        minutes = self.settings.recent_window_minutes
        p95 = self.aggregates.quantile(series, self.now_minute, minutes, 0.95)
        if p95 is None:
            if series == "requests":
                what, roles = "request lines", ("requests.status", "requests.duration")
            else:
                what, roles = f"calls to {series[4:]}", ("calls.dependency_field", "calls.duration")
            raise self._no_data(f"no {what} with a duration in the last {minutes} min", *roles)
        extra: dict[str, Any] = {
            "window_min": minutes,
            "count": self._tally(series, minutes).count,
            "method": f"DDSketch, relative accuracy {RELATIVE_ACCURACY:.0%}",
        }
        if series == "requests":
            extra["slowest"] = slowest(self.state.get("slowest", []), since_ms=self._since(minutes))
            extra["paths"] = self._paths(minutes)
        return Measurement(round(p95, 1), unit="ms", evidence=self._evidence(**extra))

    def _paths(self, minutes: int) -> dict[str, Any]:
        found: dict[str, Any] = {}
        tallies = {
            series: self._tally(series, minutes)
            for series in self.aggregates.series("path:", self.now_minute, minutes)
        }
        # The busiest routes, then the slowest among equals: where the p95 comes from.
        ranked = sorted(tallies, key=lambda s: (tallies[s].count, tallies[s].slow), reverse=True)
        for series in ranked[:20]:
            tally = tallies[series]
            p95 = self.aggregates.quantile(series, self.now_minute, minutes, 0.95)
            found[series[5:]] = {
                "count": tally.count,
                "5xx": tally.errors,
                "slow": tally.slow,
                "p95_ms": None if p95 is None else round(p95, 1),
            }
        return found

    def slow_requests(self) -> Measurement:
        """Requests slower than slow_ms in the recent window, with the 20 slowest."""
        minutes = self.settings.recent_window_minutes
        tally = self._tally("requests", minutes)
        if tally.count == 0:
            raise self._no_data(
                f"no request lines in the last {minutes} min ({self._skipped_summary()})",
                "requests.status",
            )
        evidence = self._evidence(
            window_min=minutes,
            slower_than_ms=self.settings.slow_ms,
            requests=tally.count,
            slowest=slowest(self.state.get("slowest", []), since_ms=self._since(minutes)),
        )
        return Measurement(tally.slow, unit="requests", evidence=evidence)

    def external_error_rate(self, dependency: str | None = None) -> Measurement:
        """Failed calls among calls to one dependency (or all), in the rate window."""
        minutes = self.settings.rate_window_minutes
        if dependency is not None:
            series = [f"dep:{dependency}"]
        else:
            series = self.aggregates.series("dep:", self.now_minute, minutes)
        tally = sum((self._tally(s, minutes) for s in series), Tally())
        what = f"calls to {dependency}" if dependency else "external calls"
        if tally.count == 0:
            message = f"no {what} in the logs in the last {minutes} min"
            raise self._no_data(message, "calls.dependency_field")
        recent = self.settings.recent_window_minutes
        errors = [
            e
            for e in latest(self.state.get("external_errors", []), since_ms=self._since(recent))
            if dependency is None or e.get("dependency") == dependency
        ]
        evidence = self._evidence(
            window_min=minutes,
            calls=tally.count,
            failed=tally.errors,
            per_dependency={s[4:]: self._tally(s, minutes).count for s in series},
            latest_errors=errors,
        )
        return Measurement(tally.errors / tally.count * 100, unit="%", evidence=evidence)
