"""The LogQL of the log checks, built from the resolved field mapping (pure).

Every field the checks read is extracted by name from the line's JSON
(``| json synthetic_status="res.statusCode", ...``): the exact path of the
``logs`` table, no ambiguity from flattening (``res.statusCode`` and a key
``res_statusCode``), no clash with a stream label of the same name (Loki
would rename it ``_extracted``). A field the agent already made a label
(``[logs.loki] labels``) is read as that label instead.

Lines are classified the way the file analysis does it (a call is a line its
dependency rule names; a request is a line its request rule holds for that
is not a call), with label filters only: string filters, which never set
``__error__``, and numeric ones followed by ``| __error__=""``. What depends
on text the checks map in Python (a status, a level name, which dependency a
message names) is grouped by (``sum by (synthetic_status)``) and mapped with
the same code as the files. What LogQL cannot express: a line logged while
serving one of the monitor's requests that carries neither its correlation
id nor its User-Agent (only the request id); the file analysis leaves those
out by the id, LogQL has no join.

Windows are the files' windows: the whole minutes ending with the current
one, as an instant query at ``at_ms`` over ``[<ms>ms]`` reaching back to the
window's first millisecond (Loki's range excludes its start).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from synthetic.logs.settings import LEVELS, LogsSettings, Rule, split_path
from synthetic.logs.shapes import (
    NAME_SEPARATORS,
    NAME_SUFFIXES,
    OWN_CORRELATION_PREFIX,
    OWN_USER_AGENT_PREFIX,
    LogShape,
)
from synthetic.logs.sources.settings import LokiSettings
from synthetic.measure.selector import escape

PREFIX = "synthetic_"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_LEADING_FLAGS = re.compile(r"^\(\?([a-zA-Z]+)\)")
NOT_ERROR = '__error__=""'
NEVER = r"\b\B"  # matches nothing, in RE2 and in Python (RE2 has no (?!))


def number(value: float) -> str:
    """A LogQL number literal: plain decimals (no exponent)."""
    text = format(value, "f").rstrip("0").rstrip(".")
    return text or "0"


def quote(text: str) -> str:
    """A LogQL string literal."""
    return f'"{escape(text)}"'


def regex_literal(text: str) -> str:
    """``text`` matched literally by RE2 (and Python's re): only the characters
    that mean something are escaped (RE2 refuses an escaped space or letter)."""
    return _RE2_SPECIAL.sub(r"\\\1", text)


def contains(pattern: str) -> str:
    """A search for ``pattern`` anywhere in a value (Python's ``re.search``), as an
    anchored LogQL regex. Leading flags stay in front: Python refuses them later."""
    flags = "s"
    found = _LEADING_FLAGS.match(pattern)
    if found:
        flags += "".join(f for f in found.group(1) if f in "imU")
        pattern = pattern[found.end() :]
    return f"(?{''.join(sorted(set(flags)))}).*(?:{pattern}).*"


def json_path(path: str) -> str:
    """A field path of the ``logs`` table as a Loki JSON expression:
    ``req.headers.user-agent`` -> ``req.headers["user-agent"]``."""
    out = ""
    for depth, part in enumerate(split_path(path)):
        if _IDENTIFIER.fullmatch(part):
            out += part if depth == 0 else "." + part
        else:
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


@dataclass
class Labels:
    """The label each mapped field is read as; one extraction per distinct path."""

    given: dict[str, str]  # field path -> a label it already is
    extracted: dict[str, str] = field(default_factory=dict)  # field path -> our label

    def of(self, path: str, role: str) -> str:
        if path in self.given:
            return self.given[path]
        if path not in self.extracted:
            self.extracted[path] = PREFIX + role
        return self.extracted[path]

    def parser(self) -> str:
        if not self.extracted:
            return ""
        pairs = ", ".join(
            f"{label}={quote(json_path(path))}" for path, label in self.extracted.items()
        )
        return f" | json {pairs}"


def _all(*filters: str) -> str:
    return "".join(f" | {f}" for f in filters if f)


def _any_of(alternatives: Sequence[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else "(" + " or ".join(alternatives) + ")"


class LogQL:
    """The queries of one reading, at one instant."""

    def __init__(
        self, shape: LogShape, settings: LogsSettings, loki: LokiSettings, *, at_ms: int
    ) -> None:
        self.shape = shape
        self.settings = settings
        self.at_ms = at_ms
        labels = Labels(dict(loki.labels))
        self.level = labels.of(shape.level, "level")
        self.status = labels.of(shape.request_status, "status")
        self.duration = labels.of(shape.request_duration, "duration")
        self.request_when = labels.of(shape.request_when.field, "request_when")
        self.call_status = labels.of(shape.call_status, "call_status")
        self.call_duration = labels.of(shape.call_duration, "call_duration")
        self.call_error = labels.of(shape.call_error, "call_error") if shape.call_error else None
        self.call_when = labels.of(shape.call_when.field, "call_when") if shape.call_when else None
        if shape.dependency_field:
            self.texts: tuple[str, ...] = (labels.of(shape.dependency_field, "dependency"),)
        else:
            self.texts = tuple(labels.of(p, f"message{i}") for i, p in enumerate(shape.messages))
        self.correlation = tuple(
            labels.of(p, f"correlation{i}") for i, p in enumerate(shape.correlation)
        )
        self.agent = labels.of(shape.user_agent, "user_agent") if shape.user_agent else None
        own = [f"{label} !~ {quote(regex_literal(OWN_CORRELATION_PREFIX) + '.*')}"
               for label in self.correlation]  # fmt: skip
        if self.agent:
            own.append(f"{self.agent} !~ {quote(regex_literal(OWN_USER_AGENT_PREFIX) + '.*')}")
        parser = labels.parser()
        self.selector = loki.selector.strip()
        # Lines that are not JSON are left out, as the files' reader skips them.
        self.lines = self.selector + parser + (_all(NOT_ERROR) if parser else "") + _all(*own)
        self.dependency_regex = self._dependency_regex()
        self.call_lines = self.lines + _all(self._rule(shape.call_when, self.call_when),
                                       self._text_matches(self.dependency_regex))  # fmt: skip
        self.request_lines = self.lines + _all(
            self._rule(shape.request_when, self.request_when), self._not_a_call()
        )

    # --- windows ---------------------------------------------------------

    def range(self, minutes: int) -> str:
        """``[Nms]``: from the first millisecond of the window's first minute to at_ms."""
        start = (self.at_ms // 60_000 - minutes + 1) * 60_000
        return f"[{self.at_ms - start + 1}ms]"

    @property
    def rate(self) -> str:
        return self.range(self.settings.rate_window_minutes)

    @property
    def recent(self) -> str:
        return self.range(self.settings.recent_window_minutes)

    # --- line kinds ------------------------------------------------------

    def _rule(self, rule: Rule | None, label: str | None) -> str:
        if rule is None or label is None:
            return ""
        if rule.pattern is None:
            return f"{label} != {quote('')}"
        return f"{label} =~ {quote(contains(rule.pattern))}"

    def _dependency_regex(self) -> str:
        """A regex the dependency text matches when it names a configured dependency."""
        shape = self.shape
        if shape.dependency_field and self.settings.calls.dependency_pattern is None:
            # The whole value: an alias, a name, or a name with a suffix (WhmcsService).
            aliases = sorted(shape.aliases, key=len, reverse=True)
            names = sorted(shape.dependencies, key=len, reverse=True)
            suffix = f"[{regex_literal(NAME_SEPARATORS)}]?(?:{'|'.join(NAME_SUFFIXES)})"
            named = f"(?:{'|'.join(regex_literal(n) for n in names)})(?:{suffix})?"
            choices = [*(regex_literal(a) for a in aliases), named] if names else [NEVER]
            return rf"(?is)\s*(?:{'|'.join(choices)})\s*"
        if not shape.dependencies and not shape.aliases:
            return NEVER
        return contains(shape.dependency_pattern)

    def _text_matches(self, regex: str, *, negate: bool = False) -> str:
        """The dependency text (the field, or the first message field present) matches."""
        op = "!~" if negate else "=~"
        first, *rest = self.texts
        if not negate:
            # m0 =~ R or (m0 = "" and m1 =~ R) ...: R never matches an empty text.
            alternatives = [f"{first} {op} {quote(regex)}"]
            absent: list[str] = [f"{first} = {quote('')}"]
            for label in rest:
                alternatives.append(
                    "(" + " and ".join([*absent, f"{label} {op} {quote(regex)}"]) + ")"
                )
                absent.append(f"{label} = {quote('')}")
            return _any_of(alternatives)
        # not(...): m0 !~ R and (m0 != "" or m1 !~ R) ...
        parts = [f"{first} {op} {quote(regex)}"]
        present = [f"{first} != {quote('')}"]
        for label in rest:
            parts.append("(" + " or ".join([*present, f"{label} {op} {quote(regex)}"]) + ")")
            present.append(f"{label} != {quote('')}")
        return parts[0] if len(parts) == 1 else " and ".join(parts)

    def _not_a_call(self) -> str:
        not_named = self._text_matches(self.dependency_regex, negate=True)
        rule = self.shape.call_when
        if rule is None or self.call_when is None:
            return not_named
        no_rule = (
            f"{self.call_when} = {quote('')}"
            if rule.pattern is None
            else f"{self.call_when} !~ {quote(contains(rule.pattern))}"
        )
        return f"({no_rule} or ({not_named}))"

    def texts_are(self, texts: Iterable[str]) -> str:
        """The dependency text is one of ``texts`` (exactly)."""
        exact = "|".join(regex_literal(t) for t in sorted(set(texts)))
        return self._text_matches(f"(?:{exact})" if exact else NEVER)

    def error_levels(self) -> str:
        """Level >= error_level: its names first (a number filter on a name sets
        ``__error__``; after a name matched, ``or`` does not evaluate it)."""
        threshold = self.settings.error_level_number
        names = sorted(n for n, v in LEVELS.items() if v >= threshold)
        numeric = f"{self.level} >= {threshold}"
        if not names:
            return numeric
        return f"({self.level} =~ {quote('(?i)' + '|'.join(names))} or {numeric})"

    # --- the queries -----------------------------------------------------

    def requests_by_status(self) -> str:
        return f"sum by ({self.status}) (count_over_time({self.request_lines} {self.rate}))"

    def lines_by_level(self) -> str:
        return f"sum by ({self.level}) (count_over_time({self.lines} {self.recent}))"

    def _timed(self, query: str, label: str) -> str:
        return query + _all(f"{label} >= 0", NOT_ERROR)

    def timed_requests(self) -> str:
        """Recent request lines with a duration (the p95's n)."""
        return (
            f"sum(count_over_time({self._timed(self.request_lines, self.duration)} {self.recent}))"
        )

    def slow_requests(self) -> str:
        slow = f"{self.duration} > {number(self.settings.slow_ms)}"
        return f"sum(count_over_time({self.request_lines}{_all(slow, NOT_ERROR)} {self.recent}))"

    def quantile(self, q: float, lines: str, label: str) -> str:
        timed = self._timed(lines, label)
        unwrapped = f"{timed} | unwrap {label}{_all(NOT_ERROR)}"
        return f"quantile_over_time({q!r}, {unwrapped} {self.recent}) by ()"

    def request_p95(self, q: float) -> str:
        return self.quantile(q, self.request_lines, self.duration)

    def _call_groups(self) -> str:
        return ", ".join(dict.fromkeys((*self.texts, self.level, self.call_status)))

    def calls(self, *, with_error: bool | None) -> str:
        """Calls in the rate window by text, level and status; with or without the
        error field (None: no error field is mapped)."""
        lines = self.call_lines
        if with_error is not None and self.call_error:
            lines += _all(f"{self.call_error} {'!=' if with_error else '='} {quote('')}")
        return f"sum by ({self._call_groups()}) (count_over_time({lines} {self.rate}))"

    def timed_calls(self) -> str:
        groups = ", ".join(self.texts)
        timed = self._timed(self.call_lines, self.call_duration)
        return f"sum by ({groups}) (count_over_time({timed} {self.recent}))"

    def dependency_p95(self, q: float, texts: Iterable[str]) -> str:
        return self.quantile(q, self.call_lines + _all(self.texts_are(texts)), self.call_duration)

    def error_lines(self) -> str:
        """A log query: the recent error lines (the evidence)."""
        return self.lines + _all(self.error_levels(), NOT_ERROR)

    def slow_lines(self) -> str:
        slow = f"{self.duration} > {number(self.settings.slow_ms)}"
        return self.request_lines + _all(slow, NOT_ERROR)

    def every_query(
        self, texts: Iterable[str] = ("WhmcsService", "WHMCS API call failed")
    ) -> list[str]:
        """Every query a reading can send (the tests parse each with Grafana's parser)."""
        return [
            self.selector,
            self.requests_by_status(),
            self.lines_by_level(),
            self.timed_requests(),
            self.slow_requests(),
            self.request_p95(rank_quantile(0.95, 40)),
            *(self.calls(with_error=e) for e in (True, False, None)),
            self.timed_calls(),
            self.dependency_p95(rank_quantile(0.95, 7), texts),
            self.error_lines(),
            self.slow_lines(),
        ]


def rank_quantile(q: float, count: int) -> float:
    """The quantile to ask Loki for so that its interpolating ``quantile_over_time``
    (rank ``phi * (n - 1)``) lands on the files' rank ``floor(q * (n - 1))`` exactly."""
    if count <= 1:
        return q
    return int(q * (count - 1)) / (count - 1)
