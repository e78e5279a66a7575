"""The CloudWatch Logs Insights queries of the log checks (pure).

Built from the guide's two ("Error Summary": the error lines, newest first;
"Slow Requests": the slowest request lines) and the resolved field mapping.
Logs Insights discovers a JSON line's fields, nested ones joined with dots
(``res.statusCode``); every field is written in backticks. Each query starts
by naming the mapped fields (``fields `res.statusCode` as synthetic_status``),
keeps JSON lines only, and leaves the monitor's own out by its correlation
id and User-Agent. Counts come back grouped by the texts the checks classify
in Python (status, level, the text naming a dependency), as with Loki. The
p95 is Logs Insights' ``pct(…, 95)``, which AWS documents as a percentile
without saying how it ranks: close to the files', not certainly equal. An
``err`` object is present when the field or its ``message``/``type`` is.
"""

from __future__ import annotations

from collections.abc import Iterable

from synthetic.logs.settings import LEVELS, LogsSettings, Rule, split_path
from synthetic.logs.shapes import (
    NAME_SEPARATORS,
    NAME_SUFFIXES,
    OWN_CORRELATION_PREFIX,
    OWN_USER_AGENT_PREFIX,
    LogShape,
)
from synthetic.logs.sources.logql import NEVER, contains, number, regex_literal

EVIDENCE_LIMIT = 20
TEXT = "synthetic_text"


def field(path: str) -> str:
    """A field path as Logs Insights names it: ``res.statusCode``, in backticks."""
    return "`" + ".".join(split_path(path)).replace("`", "") + "`"


def regex(pattern: str) -> str:
    return "/" + pattern.replace("/", "\\/") + "/"


def string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Insights:
    """The query strings of one reading."""

    def __init__(self, shape: LogShape, settings: LogsSettings) -> None:
        self.shape = shape
        self.settings = settings
        names: dict[str, str] = {}  # alias -> field

        def name(path: str | None, alias: str) -> str | None:
            if path is None:
                return None
            names.setdefault(f"synthetic_{alias}", field(path))
            return f"synthetic_{alias}"

        self.level = name(shape.level, "level")
        self.status = name(shape.request_status, "status")
        self.duration = name(shape.request_duration, "duration")
        self.call_status = name(shape.call_status, "call_status")
        self.call_duration = name(shape.call_duration, "call_duration")
        texts = [shape.dependency_field] if shape.dependency_field else list(shape.messages)
        shown = ", ".join(field(p) for p in texts if p)
        fields = [f"{source} as {alias}" for alias, source in names.items()]
        fields.append(f"coalesce({shown}) as {TEXT}" if len(texts) > 1 else f"{shown} as {TEXT}")
        own = [
            f"(not ispresent({field(p)}) or {field(p)} not like "
            f"{regex('^' + regex_literal(OWN_CORRELATION_PREFIX))})"
            for p in shape.correlation
        ]
        if shape.user_agent:
            agent = field(shape.user_agent)
            prefix = regex("^" + regex_literal(OWN_USER_AGENT_PREFIX))
            own.append(f"(not ispresent({agent}) or {agent} not like {prefix})")
        self.base = (
            f"fields @timestamp, @message, {', '.join(fields)}\n"
            "| filter @message like /^\\s*\\{/\n" + "".join(f"| filter {o}\n" for o in own)
        )
        self.call = self._call()
        self.request = f"{self._rule(shape.request_when)} and not ({self.call})"

    def _rule(self, rule: Rule | None) -> str:
        if rule is None:
            return "1 = 1"
        present = f"ispresent({field(rule.field)})"
        if rule.pattern is None:
            return present
        return f"({present} and {field(rule.field)} like {regex(rule.pattern)})"

    def _call(self) -> str:
        shape = self.shape
        if shape.dependency_field and self.settings.calls.dependency_pattern is None:
            names = "|".join(regex_literal(n) for n in shape.dependencies) or NEVER
            aliases = [regex_literal(a) for a in shape.aliases]
            suffix = f"[{regex_literal(NAME_SEPARATORS)}]?(?:{'|'.join(NAME_SUFFIXES)})"
            choices = "|".join([*aliases, f"(?:{names})(?:{suffix})?"])
            matches = regex(rf"(?i)^\s*(?:{choices})\s*$")
        elif not shape.dependencies and not shape.aliases:
            matches = regex(NEVER)
        else:
            matches = regex(contains(shape.dependency_pattern))
        named = f"(ispresent({TEXT}) and {TEXT} like {matches})"
        if shape.call_when is None:
            return named
        return f"({self._rule(shape.call_when)} and {named})"

    def _window_filter(self, condition: str) -> str:
        return f"{self.base}| filter {condition}\n"

    def requests_by_status(self) -> str:
        return self._window_filter(self.request) + f"| stats count(*) as n by {self.status}"

    def lines_by_level(self) -> str:
        return self.base + f"| stats count(*) as n by {self.level}"

    def timed_requests(self) -> str:
        timed = f"{self.request} and ispresent({self.duration}) and {self.duration} >= 0"
        return (
            self._window_filter(timed) + f"| stats count(*) as n, pct({self.duration}, 95) as p95"
        )

    def slow_requests(self) -> str:
        slow = f"{self.request} and {self.duration} > {number(self.settings.slow_ms)}"
        return self._window_filter(slow) + "| stats count(*) as n"

    def _error_present(self) -> str | None:
        if self.shape.call_error is None:
            return None
        base = self.shape.call_error
        paths = [base, f"{base}.message", f"{base}.type"]
        return "(" + " or ".join(f"ispresent({field(p)})" for p in paths) + ")"

    def calls(self, *, with_error: bool | None) -> str:
        condition = self.call
        present = self._error_present()
        if with_error is not None and present is not None:
            condition += f" and {present}" if with_error else f" and not {present}"
        groups = ", ".join([TEXT, *(g for g in (self.level, self.call_status) if g)])
        return self._window_filter(condition) + f"| stats count(*) as n by {groups}"

    def dependency_p95(self, texts: Iterable[str]) -> str:
        listed = ", ".join(string(t) for t in sorted(set(texts)))
        d = self.call_duration
        timed = f"{self.call} and {TEXT} in [{listed}] and ispresent({d}) and {d} >= 0"
        return self._window_filter(timed) + f"| stats count(*) as n, pct({d}, 95) as p95"

    def error_lines(self) -> str:
        """The guide's "Error Summary": the latest lines of level >= error_level."""
        threshold = self.settings.error_level_number
        names = ", ".join(string(n) for n, v in LEVELS.items() if v >= threshold)
        level = f"{self.level} >= {threshold}" + (f" or {self.level} in [{names}]" if names else "")
        return (
            self._window_filter(f"({level})") + f"| sort @timestamp desc\n| limit {EVIDENCE_LIMIT}"
        )

    def slow_lines(self) -> str:
        """The guide's "Slow Requests": the slowest request lines over slow_ms."""
        slow = f"{self.request} and {self.duration} > {number(self.settings.slow_ms)}"
        return self._window_filter(slow) + f"| sort {self.duration} desc\n| limit {EVIDENCE_LIMIT}"


SAMPLE = "fields @timestamp, @message\n| sort @timestamp desc\n| limit 200"
