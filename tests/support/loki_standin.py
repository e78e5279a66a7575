"""A Loki stand-in on loopback: its HTTP API, answering from log files.

Loki itself cannot run here (not in Debian, PyPI or npm), so this serves
``/loki/api/v1/query`` and ``/loki/api/v1/query_range`` in Loki's documented
format (vector, matrix, streams; plain-text errors with their status) and
evaluates the part of LogQL the monitor sends, written from Loki's own
semantics and independent of synthetic's query builder:

- a stream selector; ``| json name="path", ...`` (a missing path or JSON null
  is ``""``, an object its raw JSON, a line that is not JSON gets
  ``__error__="JSONParserErr"``; a name a stream label already has becomes
  ``name_extracted``);
- label filters: string matchers (a missing label is ``""``; regexes match the
  whole value), numeric comparisons (a missing label fails the filter, a value
  that is not a number sets ``__error__="LabelFilterErr"`` and passes), ``and``,
  ``or`` (evaluated left first, as Loki's ``BinaryLabelFilter``), parentheses;
- ``| unwrap label`` (a value that is not a number sets
  ``__error__="SampleExtractionErr"``; an error left at the end fails the
  query, as in Loki);
- ``count_over_time``, ``quantile_over_time`` (Prometheus's interpolating
  quantile) over ``[Nms|s|m|h]`` ranges, which exclude their start;
  ``sum [by|without (...)]``, and ``by (...)`` on a range aggregation.

Each line's timestamp is its Pino ``time`` (an agent's timestamp stage);
every file is one stream with the given labels. ``fault`` makes it answer
what a real Loki may: ``"error"`` (400, Loki's parse-error text), ``"429"``,
``"503"`` (with the count of answers before it recovers), ``"partial"``
(a ``warnings`` list), ``"matrix"`` (instant metric queries as a matrix).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<range>\[[0-9]+(?:ms|s|m|h)\])"""
    r"""|(?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"""
    r"""|(?P<op>=~|!~|!=|==|>=|<=|=|>|<|\||,|\(|\)|\{|\})|(?P<ident>[A-Za-z_][A-Za-z0-9_]*))"""
)
_DURATION = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_JSON_PATH = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\["((?:[^"\\]|\\.)*)"\]|\[([0-9]+)\]')


class QueryError(ValueError):
    """What Loki answers 400 for."""


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    text: str = json.loads(token)
    return text  # Go's double-quoted strings: the same escapes as JSON here


def _tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    while at < len(text):
        if not text[at:].strip():
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise QueryError(f"parse error at col {at + 1}: unexpected {text[at : at + 10]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


# --- the parsed query ------------------------------------------------------


@dataclass
class Filter:
    kind: str  # "match" | "number" | "and" | "or"
    label: str = ""
    op: str = ""
    value: Any = None
    left: Filter | None = None
    right: Filter | None = None


@dataclass
class Stage:
    kind: str  # "json" | "filter" | "unwrap"
    expressions: list[tuple[str, str]] = field(default_factory=list)
    filter: Filter | None = None
    label: str = ""


@dataclass
class LogQuery:
    selector: list[tuple[str, str, str]]
    stages: list[Stage]


@dataclass
class MetricQuery:
    function: str  # count_over_time | quantile_over_time | sum
    log: LogQuery | None = None
    range_ms: int = 0
    quantile: float = 0.0
    inner: MetricQuery | None = None
    by: tuple[str, ...] | None = None
    without: tuple[str, ...] | None = None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        got_kind, got = self.peek()
        if (value is not None and got != value) or (kind is not None and got_kind != kind):
            raise QueryError(f"parse error: expected {value or kind}, got {got!r}")
        self.at += 1
        return got

    def query(self) -> LogQuery | MetricQuery:
        found: LogQuery | MetricQuery = self.metric() if self.peek()[1] != "{" else self.log()
        if self.peek()[0] != "end":
            raise QueryError(f"parse error: unexpected {self.peek()[1]!r}")
        return found

    def grouping(self) -> tuple[str, tuple[str, ...]] | None:
        word = self.peek()[1]
        if word not in ("by", "without"):
            return None
        self.take()
        self.take("(")
        labels: list[str] = []
        while self.peek()[1] != ")":
            labels.append(self.take(kind="ident"))
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return word, tuple(labels)

    def metric(self) -> MetricQuery:
        name = self.take(kind="ident")
        if name == "sum":
            before = self.grouping()
            self.take("(")
            inner = self.metric()
            self.take(")")
            grouping = before or self.grouping()
            query = MetricQuery("sum", inner=inner)
        elif name in ("count_over_time", "quantile_over_time"):
            self.take("(")
            query = MetricQuery(name)
            if name == "quantile_over_time":
                query.quantile = float(self.take(kind="number"))
                self.take(",")
            query.log = self.log()
            text = self.take(kind="range")
            number, unit = re.fullmatch(r"\[([0-9]+)(ms|s|m|h)\]", text).groups()  # type: ignore[union-attr]
            query.range_ms = int(number) * _DURATION[unit]
            self.take(")")
            grouping = self.grouping()
        else:
            raise QueryError(f"parse error: unknown function {name}")
        if grouping is not None:
            kind, labels = grouping
            if kind == "by":
                query.by = labels
            else:
                query.without = labels
        return query

    def log(self) -> LogQuery:
        self.take("{")
        selector = []
        while self.peek()[1] != "}":
            label = self.take(kind="ident")
            op = self.take(kind="op")
            selector.append((label, op, _unquote(self.take(kind="string"))))
            if self.peek()[1] == ",":
                self.take(",")
        self.take("}")
        stages = []
        while self.peek()[1] == "|":
            self.take("|")
            stages.append(self.stage())
        return LogQuery(selector, stages)

    def stage(self) -> Stage:
        word = self.peek()[1]
        if word == "json":
            self.take()
            expressions = []
            while self.peek()[0] == "ident" and self.peek(1)[1] == "=":
                label = self.take()
                self.take("=")
                expressions.append((label, _unquote(self.take(kind="string"))))
                if self.peek()[1] == ",":
                    self.take(",")
            return Stage("json", expressions=expressions)
        if word == "unwrap":
            self.take()
            return Stage("unwrap", label=self.take(kind="ident"))
        return Stage("filter", filter=self.or_filter())

    def or_filter(self) -> Filter:
        left = self.and_filter()
        while self.peek()[1] == "or":
            self.take()
            left = Filter("or", left=left, right=self.and_filter())
        return left

    def and_filter(self) -> Filter:
        left = self.atom()
        while self.peek()[1] in ("and", ","):
            self.take()
            left = Filter("and", left=left, right=self.atom())
        return left

    def atom(self) -> Filter:
        if self.peek()[1] == "(":
            self.take("(")
            inner = self.or_filter()
            self.take(")")
            return inner
        label = self.take(kind="ident")
        op = self.take(kind="op")
        kind, value = self.peek()
        self.take()
        if kind == "number":
            return Filter("number", label, op, float(value))
        if kind != "string" or op not in ("=", "!=", "=~", "!~"):
            raise QueryError(f"parse error: bad label filter {label} {op} {value}")
        text = _unquote(value)
        compiled = re.compile(text) if op in ("=~", "!~") else None
        return Filter("match", label, op, compiled if compiled is not None else text)


def parse(text: str) -> LogQuery | MetricQuery:
    return _Parser(text).query()


# --- evaluation ------------------------------------------------------------


@dataclass
class Entry:
    ts_ns: int
    line: str
    stream: dict[str, str]


def _json_value(record: Any, path: str) -> str:
    node = record
    for match in _JSON_PATH.finditer(path):
        name, quoted, index = match.groups()
        key: Any = (
            name
            if name is not None
            else (json.loads(f'"{quoted}"') if quoted is not None else int(index))
        )
        if isinstance(node, dict) and isinstance(key, str) and key in node:  # noqa: SIM114 (typed apart)
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return ""
    if node is None:
        return ""
    if isinstance(node, dict | list):
        return json.dumps(node, separators=(",", ":"))
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)  # numbers kept as their text (parse_int/parse_float=str)


def _filter(f: Filter, labels: dict[str, str], error: list[str]) -> bool:
    if f.kind == "and":
        assert f.left is not None
        assert f.right is not None
        return _filter(f.left, labels, error) and _filter(f.right, labels, error)
    if f.kind == "or":
        assert f.left is not None
        assert f.right is not None
        return _filter(f.left, labels, error) or _filter(f.right, labels, error)
    value = error[0] if f.label == "__error__" else labels.get(f.label, "")
    if f.kind == "match":
        if f.op in ("=", "!="):
            return bool((value == f.value) == (f.op == "="))
        return bool((f.value.fullmatch(value) is not None) == (f.op == "=~"))
    if f.label not in labels:
        return False
    try:
        number = float(value)
    except ValueError:
        if not error[0]:
            error[0] = "LabelFilterErr"
        return True
    return bool({
        ">": number > f.value, ">=": number >= f.value, "<": number < f.value,
        "<=": number <= f.value, "==": number == f.value, "!=": number != f.value,
    }[f.op])  # fmt: skip


def _selected(query: LogQuery, stream: dict[str, str]) -> bool:
    for label, op, value in query.selector:
        actual = stream.get(label, "")
        if (op == "=" and actual != value) or (op == "!=" and actual == value):
            return False
        if op in ("=~", "!~") and (re.fullmatch(value, actual) is not None) != (op == "=~"):
            return False
    return True


def run_pipeline(query: LogQuery, entry: Entry) -> tuple[dict[str, str], float | None] | None:
    """The entry's labels (and unwrapped value) after the pipeline, or None if filtered out."""
    labels = dict(entry.stream)
    error = [""]
    value: float | None = None
    for stage in query.stages:
        if stage.kind == "json":
            try:
                record = json.loads(entry.line, parse_int=str, parse_float=str)
            except ValueError:
                record = None
            if not isinstance(record, dict | list) and not entry.line.lstrip().startswith('"'):
                error[0] = error[0] or "JSONParserErr"
                continue
            for label, path in stage.expressions:
                name = label + "_extracted" if label in entry.stream else label
                labels[name] = _json_value(record, path)
        elif stage.kind == "unwrap":
            try:
                value = float(labels.get(stage.label, ""))
            except ValueError:
                error[0] = error[0] or "SampleExtractionErr"
            labels.pop(stage.label, None)
        elif stage.filter is not None and not _filter(stage.filter, labels, error):
            return None
    if error[0]:
        labels["__error__"] = error[0]
    return labels, value


def _quantile(q: float, values: list[float]) -> float:
    """Prometheus's (and Loki's) quantile: linear between the two nearest ranks."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def _group(
    labels: dict[str, str], by: tuple[str, ...] | None, without: tuple[str, ...] | None
) -> tuple[tuple[str, str], ...]:
    if by is not None:
        return tuple(sorted((k, labels[k]) for k in by if labels.get(k)))
    if without is not None:
        return tuple(sorted((k, v) for k, v in labels.items() if k not in without))
    return tuple(sorted(labels.items()))


def evaluate(
    query: MetricQuery, entries: list[Entry], at_ns: int
) -> dict[tuple[tuple[str, str], ...], float]:
    if query.function == "sum":
        assert query.inner is not None
        inner = evaluate(query.inner, entries, at_ns)
        found: dict[tuple[tuple[str, str], ...], float] = {}
        for key, value in inner.items():
            group = _group(
                dict(key),
                query.by if query.by is not None else (() if query.without is None else None),
                query.without,
            )
            found[group] = found.get(group, 0.0) + value
        return found
    assert query.log is not None
    start = at_ns - query.range_ms * 1_000_000
    samples: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for entry in entries:
        if not (start < entry.ts_ns <= at_ns) or not _selected(query.log, entry.stream):
            continue
        result = run_pipeline(query.log, entry)
        if result is None:
            continue
        labels, unwrapped = result
        if query.function == "quantile_over_time":
            if "__error__" in labels:
                error = labels["__error__"]
                raise QueryError(
                    f"pipeline error: '{error}' for series {labels}. "
                    "Use a label filter to intentionally skip this error."
                )
            key = _group(labels, query.by, query.without)
            samples.setdefault(key, []).append(math.nan if unwrapped is None else unwrapped)
        else:
            key = tuple(sorted(labels.items()))
            samples.setdefault(key, []).append(1.0)
    if query.function == "count_over_time":
        return {key: float(len(values)) for key, values in samples.items()}
    return {key: _quantile(query.quantile, values) for key, values in samples.items()}


# --- the server ------------------------------------------------------------


# The stream the stand-in's lines are in, as the portal's config selects it.
PORTAL_SELECTOR = '{service="customer-portal-bff"}'
PORTAL_SELECTOR_TOML = f"selector = '{PORTAL_SELECTOR}'\n"


@dataclass
class LokiStandIn:
    """The stand-in's data and behaviour; the server reads them on every request."""

    files: list[Path]
    stream: dict[str, str] = field(default_factory=lambda: {"service": "customer-portal-bff"})
    tenant: str | None = None
    basic: tuple[str, str] | None = None
    bearer: str | None = None
    fault: str | None = None  # error | 429 | 503 | partial | matrix
    fault_times: int = 1_000_000  # answers the fault lasts for
    url: str = ""
    queries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def entries(self) -> list[Entry]:
        found = []
        for path in self.files:
            stream = {**self.stream, "filename": str(path)}
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                at = record.get("time") if isinstance(record, dict) else None
                if isinstance(at, int):
                    found.append(Entry(at * 1_000_000, line, stream))
        return found

    def answer(
        self, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if self.tenant is not None and headers.get("x-scope-orgid") != self.tenant:
            return 401, {}, b"no org id\n"
        expected = self._authorization()
        if expected is not None and headers.get("authorization") != expected:
            return 401, {}, b"authentication required\n"
        with self.lock:
            self.queries.append(params.get("query", ""))
            fault = self.fault if self.fault_times > 0 else None
            if fault in ("error", "429", "503"):
                self.fault_times -= 1
        if fault == "429":
            return (
                429,
                {"Retry-After": "0"},
                b"Ingestion rate limit exceeded: too many outstanding requests\n",
            )
        if fault == "503":
            return 503, {}, b"upstream connect error or disconnect/reset before headers\n"
        try:
            query = parse(params["query"])
            if fault == "error":
                raise QueryError(
                    "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"
                )
            data = self._data(path, query, params, matrix=fault == "matrix")
        except (QueryError, KeyError, ValueError, re.error) as exc:
            return 400, {}, f"{exc}\n".encode()
        body: dict[str, Any] = {"status": "success", "data": data}
        if fault == "partial":
            body["warnings"] = ["query timed out: results are partial"]
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _authorization(self) -> str | None:
        if self.bearer:
            return f"Bearer {self.bearer}"
        if self.basic:
            return "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
        return None

    def _data(
        self, path: str, query: LogQuery | MetricQuery, params: dict[str, str], *, matrix: bool
    ) -> dict[str, Any]:
        entries = self.entries()
        if path == "/loki/api/v1/query":
            if isinstance(query, LogQuery):
                raise QueryError("log queries are not supported as an instant query type")
            at_ns = int(params["time"])
            values = evaluate(query, entries, at_ns)
            seconds = at_ns / 1e9
            if matrix:
                return {"resultType": "matrix", "result": [
                    {"metric": dict(k), "values": [[seconds - 60, "0"], [seconds, _number(v)]]}
                    for k, v in values.items()]}  # fmt: skip
            return {"resultType": "vector", "result": [
                {"metric": dict(k), "value": [seconds, _number(v)]}
                for k, v in values.items()]}  # fmt: skip
        if path == "/loki/api/v1/query_range":
            if not isinstance(query, LogQuery):
                raise QueryError("this stand-in answers log queries on query_range")
            start, end = int(params["start"]), int(params["end"])
            limit = int(params.get("limit", "100"))
            picked = []
            for entry in entries:
                if start <= entry.ts_ns < end and _selected(query, entry.stream):
                    kept = run_pipeline(query, entry)
                    if kept is not None:
                        picked.append((entry.ts_ns, entry.line, kept[0]))
            picked.sort(
                key=lambda p: p[0], reverse=params.get("direction", "backward") == "backward"
            )
            streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
            for ts, line, labels in picked[:limit]:
                streams.setdefault(tuple(sorted(labels.items())), []).append([str(ts), line])
            return {"resultType": "streams", "result": [
                {"stream": dict(k), "values": v} for k, v in streams.items()]}  # fmt: skip
        raise KeyError(path)


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(value)


class _Handler(BaseHTTPRequestHandler):
    standin: LokiStandIn

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        extra: dict[str, str]
        if parts.path not in ("/loki/api/v1/query", "/loki/api/v1/query_range"):
            status, extra, body = 404, {}, b"404 page not found\n"
        else:
            try:
                status, extra, body = self.standin.answer(parts.path, params, headers)
            except Exception as exc:  # a stand-in bug: an answer that says so, not a reset
                status, extra, body = 500, {}, f"stand-in failed: {exc!r}\n".encode()
        self.send_response(status)
        extra.setdefault("Content-Type", "text/plain; charset=utf-8")
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def loki_standin(files: list[Path], **options: Any) -> Iterator[LokiStandIn]:
    """A stand-in Loki on a free loopback port, answering from ``files``."""
    standin = LokiStandIn(list(files), **options)
    handler = type("Handler", (_Handler,), {"standin": standin})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    standin.url = f"http://{LOOPBACK}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
