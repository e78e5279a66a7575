"""One pass over the configured log files: previous state + new lines -> new state.

Each file is read from where the previous run stopped (`positions`); each
chunk of new lines is parsed (`parse`) and reduced with polars to per-minute
counts and sketch bins (`aggregate`) and a few evidence lines (`evidence`).
The result is plain JSON: the new state, and what this run read.

Time: a line's minute is its Pino ``time`` (epoch ms), else its ISO
``timestamp``. Lines may come out of order (several processes, buffered
writers): each is counted in its own minute. A line up to
``max_clock_skew_s`` in the future is counted in the current minute; one
further ahead is skipped and counted as ``future`` (a writer's clock is
wrong; it cannot be placed in a window). A line older than the longest
window is ``outside_window``. A line without a time is ``untimed``.

Lines of level >= ``error_level`` are counted once across files and runs:
Pino setups that write errors both to ``combined.log`` and ``error.log``
would otherwise count each error twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# polars' allocator (jemalloc) reads this when polars loads: one arena and
# freed pages returned after 0.5 s, instead of an arena per thread keeping
# them 10 s. Peak RSS of a cold run over 1 GB: 180 -> 150 MB, no slower.
# An operator's own setting wins; it has no effect once polars is loaded.
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,dirty_decay_ms:500,muzzy_decay_ms:0")

import orjson
import polars as pl

from synthetic.errors import LogFileError
from synthetic.logs import evidence
from synthetic.logs.aggregate import KEY_MULTIPLIER, ZERO_KEY, Aggregates
from synthetic.logs.parse import (
    Parsed,
    Reading,
    number,
    parse_chunk,
    raw_lines,
    reading,
)
from synthetic.logs.positions import LogReader, Position, Seek
from synthetic.logs.settings import LogsSettings, Rule, split_path
from synthetic.logs.shapes import LogShape, detect, get_path, resolve
from synthetic.measure.jsonbody import loads
from synthetic.redact import Masker
from synthetic.text import printable

STATE_VERSION = 3  # 3: field paths, presets, the monitor's own lines left out
_ID_SEGMENT = re.compile(
    r"/(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|[^/]*@[^/]*)(?=/|$)"
)


def normalise_path(path: str | None) -> str:
    """``/api/invoices/123?x=1`` -> ``/api/invoices/:id``: one series per route."""
    if not path:
        return "?"
    return _ID_SEGMENT.sub("/:id", path.split("?", 1)[0])[:200]


def settings_digest(settings: LogsSettings, preset: str) -> str:
    """Aggregates made under other field names or mapping are not comparable."""
    text = settings.model_dump_json() + preset
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class _Run:
    settings: LogsSettings
    shape: LogShape
    read: Reading
    now_ms: int
    aggregates: Aggregates
    seen: dict[int, tuple[int, int]]  # hash of an error line -> (its minute, its file's key)
    entries: dict[str, list[dict[str, Any]]]
    masker: Masker | None = None  # the run's secrets, masked in what is kept
    routes: dict[str, str] = field(default_factory=dict)  # path -> route, across chunks
    dependencies: dict[str, str | None] = field(default_factory=dict)  # message -> dependency
    route_ids: dict[str, int] = field(default_factory=dict)  # route -> its number
    route_names: list[str] = field(default_factory=list)  # number -> route
    series: dict[tuple[str | None, int], str] = field(default_factory=dict)
    own_ids: dict[str, None] = field(default_factory=dict)  # request ids of the monitor's own
    hits: dict[str, int] = field(default_factory=dict)  # mapped role -> lines that had it
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "lines",
                "skipped",
                "untimed",
                "future",
                "outside_window",
                "duplicates",
                "own",
                "bytes_read",
            ),
            0,
        )
    )

    @property
    def now_minute(self) -> int:
        return self.now_ms // 60_000

    def route_id(self, route: str) -> int:
        number = self.route_ids.get(route)
        if number is None:
            number = self.route_ids[route] = len(self.route_names)
            self.route_names.append(route)
        return number

    def path_series(self, method: str | None, route: int) -> str:
        """``path:GET /api/invoices/:id`` for a method and a route's number."""
        name = self.series.get((method, route))
        if name is None:
            name = f"path:{(method or '').upper()} {self.route_names[route]}"
            self.series[(method, route)] = name
        return name

    def since(self, minutes: int) -> int:
        """The first epoch ms of a window of ``minutes`` whole minutes ending now."""
        return (self.now_minute - minutes + 1) * 60_000


def analyse(
    paths: Sequence[str],
    settings: LogsSettings,
    previous: Mapping[str, Any] | None,
    *,
    now_ms: int | None = None,
    masker: Masker | None = None,
) -> dict[str, Any]:
    """Read what is new in ``paths`` and return ``{"state": ..., "run": ...}`` (JSON).

    ``masker`` masks the run's secrets in the lines kept as evidence (and in
    those a state written before kept), so neither the state nor a result
    holds one a target wrote into its log.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    previous = previous if isinstance(previous, Mapping) else {}
    sample = _sample(paths)
    shape = _shape(settings, previous, sample)
    digest = settings_digest(settings, shape.preset)
    if previous.get("version") != STATE_VERSION or previous.get("settings") != digest:
        previous = {}
    run = _Run(
        settings=settings,
        shape=shape,
        read=reading(shape, sample.records),
        now_ms=now_ms,
        aggregates=Aggregates(),
        seen={},
        entries={name: [] for name in _EVIDENCE},
        masker=masker,
    )
    try:
        run.aggregates = Aggregates.from_json(previous.get("minutes"))
        run.seen = {
            int(h): (int(m), int(f)) for h, (m, f) in dict(previous.get("seen", {})).items()
        }
        run.entries = {
            name: [_masked(e, masker) for e in previous.get(name) or [] if _is_entry(e)]
            for name in _EVIDENCE
        }
        run.hits = {str(k): int(v) for k, v in dict(previous.get("hits") or {}).items()}
        positions = dict(previous.get("files") or {})
    except (AttributeError, TypeError, ValueError):  # a damaged state: start afresh
        run.aggregates, run.seen, run.hits = Aggregates(), {}, {}
        run.entries = {name: [] for name in _EVIDENCE}
        positions = {}
    files: dict[str, dict[str, Any]] = {}
    new_positions: dict[str, Any] = {}
    identities: dict[tuple[int, int], str] = {}
    for path in paths:
        same = _already_listed(path, identities)
        if same is not None:  # a symlink to, or another name of, a file read above
            files[path] = {
                "error": None,
                "bytes_read": 0,
                "notes": [f"{path}: same file as {same}"],
            }
            continue
        old = Position.from_json(positions.get(path))
        reader = LogReader(Path(path), old, _seek(run))
        report: dict[str, Any] = {"error": None}
        try:
            _fold_all(run, reader.chunks(), path, reader.stats.notes)
        except LogFileError as exc:
            report["error"] = str(exc)
        position = reader.position if report["error"] is None else old
        if position is not None:
            new_positions[path] = position.to_json()
        report.update(
            bytes_read=reader.stats.bytes_read,
            bytes_before_window=reader.stats.bytes_before_window,
            started=reader.stats.started,
            notes=reader.stats.notes,
            lines_too_long=reader.stats.lines_too_long,
        )
        run.stats["bytes_read"] += reader.stats.bytes_read
        run.stats["skipped"] += reader.stats.lines_too_long
        files[path] = report

    _prune(run)
    state = {
        "version": STATE_VERSION,
        "settings": digest,
        "shape": {"preset": shape.preset, "detected": shape.detected},
        "analysed_at": now_ms,
        "files": new_positions,
        "minutes": run.aggregates.to_json(),
        "seen": {str(h): list(seen) for h, seen in run.seen.items()},
        "hits": run.hits,
        **run.entries,
    }
    shape_report = {
        "preset": shape.preset,
        "detected": shape.detected,
        "described": shape.describe(),
        "roles": shape.roles(),
        "keys_seen": sample.keys,
    }
    return {"state": state, "run": {"now_ms": now_ms, "files": files, "shape": shape_report,
                                    **run.stats}}  # fmt: skip


@dataclass
class _Sample:
    records: list[dict[str, Any]]
    keys: list[str]  # the top-level keys of the sampled lines, sorted


SAMPLE_BYTES = 64 * 1024
SAMPLE_LINES = 400
KEYS_SHOWN = 40


def _sample(paths: Sequence[str]) -> _Sample:
    """Lines from the head and the tail of each file (bounded): what the shape is
    detected from, and the keys a reason names when a field maps nothing."""
    records: list[dict[str, Any]] = []
    for path in paths:
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue  # a FIFO or a directory is never waited on; the reader names it
            with open(path, "rb") as handle:
                head = handle.read(SAMPLE_BYTES)
                size = os.fstat(handle.fileno()).st_size
                tail = b""
                if size > SAMPLE_BYTES:
                    handle.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
                    tail = handle.read(SAMPLE_BYTES).split(b"\n", 1)[-1]
        except OSError:
            continue  # the reader names the problem
        for line in (*head.split(b"\n")[:-1], *tail.split(b"\n")[:-1]):
            if len(records) >= SAMPLE_LINES:
                break
            try:
                record = loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    keys = sorted({str(k)[:40] for record in records for k in record})
    return _Sample(records, keys[:KEYS_SHOWN])


def _shape(settings: LogsSettings, previous: Mapping[str, Any], sample: _Sample) -> LogShape:
    """The configured preset; else the one detected before (kept while the settings
    are the same, so a run of only startup lines does not change it); else detected now."""
    if settings.preset is not None:
        return resolve(settings, settings.preset, detected=None)
    known = previous.get("shape")
    if isinstance(known, dict) and known.get("detected"):
        preset, how = known.get("preset"), known.get("detected")
        if (
            isinstance(preset, str)
            and previous.get("settings") == settings_digest(settings, preset)
            and isinstance(how, str)
        ):
            return resolve(settings, preset, detected=how)
    found = detect(sample.records)
    if found is None:
        return resolve(settings, "guide", detected=None)
    preset, how = found
    return resolve(settings, preset, detected=how)


# Error hashes kept for the dedupe across files: about 5 MB of state at most.
SEEN_LIMIT = 100_000

# How far before the window a file read from its start begins: lines written
# slightly out of order (several writers, buffering) are not lost.
SEEK_MARGIN_MS = 5 * 60_000


def _already_listed(path: str, identities: dict[tuple[int, int], str]) -> str | None:
    """The earlier entry of ``log_files`` that names the same file, if any."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # the reader names the problem
    first = identities.setdefault((st.st_dev, st.st_ino), path)
    return first if first != path else None


def _seek(run: _Run) -> Seek:
    """Where a file read from its start may begin: the window, less a margin."""
    time_path = split_path(run.shape.time)
    timestamp_path = split_path(run.shape.timestamp)

    def line_time(line: bytes) -> int | None:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict):
            return None
        moment = get_path(record, time_path)
        if not isinstance(moment, str) and (found := number(moment, whole=True)) is not None:
            return int(found)
        stamp = get_path(record, timestamp_path)
        stamp = moment if stamp is None else stamp
        if isinstance(stamp, str):
            try:
                return int(datetime.fromisoformat(stamp).timestamp() * 1000)
            except ValueError:
                return None
        return None

    return Seek(run.since(run.settings.longest_window) - SEEK_MARGIN_MS, line_time)


def _prune(run: _Run) -> None:
    settings = run.settings
    run.aggregates.prune(
        run.now_minute, keep=settings.longest_window, keep_bins=settings.recent_window_minutes
    )
    oldest_seen = run.now_minute - settings.recent_window_minutes
    run.seen = {h: seen for h, seen in run.seen.items() if seen[0] > oldest_seen}
    if len(run.seen) > SEEN_LIMIT:  # an error storm: keep the newest, bound the state
        newest = sorted(run.seen.items(), key=lambda item: item[1][0])[-SEEN_LIMIT:]
        run.seen = dict(newest)
    recent = run.since(settings.recent_window_minutes)
    run.entries["errors"] = evidence.latest(run.entries["errors"], since_ms=recent)
    run.entries["slowest"] = evidence.slowest_per_minute(run.entries["slowest"], since_ms=recent)
    run.entries["external_errors"] = evidence.latest(
        run.entries["external_errors"], since_ms=recent
    )


def _fold_all(run: _Run, chunks: Iterator[bytes], path: str, notes: list[str]) -> None:
    """Parse the next chunk while this one is folded (polars releases the GIL)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="logs-parse") as pool:
        pending: tuple[bytes, Future[Parsed]] | None = None
        for chunk in chunks:
            if not chunk:
                continue
            upcoming = (chunk, pool.submit(parse_chunk, chunk, run.read))
            if pending is not None:
                _fold_or_skip(run, *pending, path, notes)
            pending = upcoming
        if pending is not None:
            _fold_or_skip(run, *pending, path, notes)


def _fold_or_skip(
    run: _Run, chunk: bytes, parsed: Future[Parsed], path: str, notes: list[str]
) -> None:
    """Fold a chunk; one that cannot be analysed is skipped and said, never fatal:
    the position moves past it, so one odd line cannot stop the log checks for good."""
    before = {name: run.stats[name] for name in ("lines", "skipped")}
    try:
        _fold(run, chunk, parsed.result(), path)
    except Exception as exc:
        lines = chunk.count(b"\n")
        run.stats["lines"] = before["lines"] + lines
        run.stats["skipped"] = before["skipped"] + lines
        reason = printable(f"{type(exc).__name__}: {exc}", 300)
        notes.append(f"{path}: {lines} lines skipped, they could not be analysed ({reason})")


def _fold(run: _Run, chunk: bytes, parsed: Parsed, path: str) -> None:
    """Add one parsed chunk to the run's aggregates and evidence.

    Two rounds of polars per chunk, each one `pl.collect_all` of lazy plans
    over the same frame: first the window's counts and what needs Python (the
    error lines' hashes, the unique paths and dependency texts, the monitor's
    own request ids), then, with the duplicates and mappings known, the
    grouped counts, bins and evidence candidates. Only small grouped frames
    come back to Python.
    """
    settings = run.settings
    stats = run.stats
    stats["skipped"] += parsed.skipped
    stats["lines"] += parsed.frame.height + parsed.skipped
    if parsed.frame.height == 0:
        return
    latest_ms = run.now_ms + int(settings.max_clock_skew_s * 1000)
    first_ms = run.since(settings.longest_window)
    ms = pl.col("ms")
    lines = _timed(parsed.frame, run).with_columns(
        minute=pl.min_horizontal(ms // 60_000, pl.lit(run.now_minute))
    )
    window = ms.is_between(first_ms, latest_ms)
    in_window = lines.filter(window & ~pl.col("own"))
    error = (pl.col("level") >= settings.error_level_number).fill_null(False)
    identity = pl.struct(*_IDENTITY)
    texts = "dep_text" if run.shape.dependency_field else "message"
    rules = _pattern_rules(run)
    first = [
        lines.select(
            untimed=ms.null_count(),
            future=(ms > latest_ms).sum(),
            outside=(ms < first_ms).sum(),
            own=(window & pl.col("own")).sum(),
            newest=ms.filter(window & ~pl.col("own")).max(),
        ),
        in_window.filter(error).select("row", "minute", h=identity.hash(seed=_HASH_SEED)),
        in_window.select(pl.col("path").drop_nulls().unique()),
        in_window.select(pl.col(texts).drop_nulls().unique()),
        lines.filter(pl.col("own_self") & pl.col("request_id").is_not_null()).select(
            pl.col("request_id").unique()
        ),
        *(in_window.select(pl.col(column).drop_nulls().unique()) for column in rules),
    ]
    summary, errors, paths, dependency_texts, own_ids, *rule_values = pl.collect_all(first)
    counts = summary.row(0, named=True)
    for name in ("untimed", "future", "own"):
        stats[name] += counts[name]
    stats["outside_window"] += counts["outside"]
    _remember_own(run, own_ids.to_series().to_list())
    if counts["newest"] is None:  # no line of the portal's own in the window
        return
    duplicates = _duplicate_errors(run, errors, path)
    if duplicates:
        in_window = in_window.filter(~pl.col("row").is_in(duplicates))
    matched = {
        column: {v for v in values.to_series().to_list() if re.search(pattern, v)}
        for (column, pattern), values in zip(rules.items(), rule_values, strict=True)
    }
    rows = _classify(run, in_window, paths, dependency_texts, matched)
    second = [*_grouped(run, rows), rows.select(**_HITS)]
    recent_ms = run.since(settings.recent_window_minutes)
    # Evidence comes from the recent window only: a cold run over an hour of
    # logs looks for lines in the last minutes' chunks, not in every chunk.
    if counts["newest"] >= recent_ms:
        second.extend(_evidence_candidates(rows.filter(ms >= recent_ms)).values())
    grouped, bins, hits, *candidates = pl.collect_all(second)
    for role, count in hits.row(0, named=True).items():
        run.hits[role] = run.hits.get(role, 0) + count
    _fold_counts(run, grouped)
    _fold_bins(run, bins)
    if candidates:
        _keep_evidence(run, dict(zip(_EVIDENCE, candidates, strict=True)), parsed, chunk, path)


def _has(column: str, kind: str | None) -> pl.Expr:
    present = pl.col(column).is_not_null()
    return (present if kind is None else present & pl.col(kind)).sum()


# A mapped role -> how many lines of its kind had the field (for the reasons).
# A request line is found by its status, so that one counts on every line but calls.
_HITS = {
    "requests.status": (pl.col("req_status").is_not_null() & ~pl.col("external")).sum(),
    "requests.duration": _has("req_duration", "request"),
    "requests.path": _has("path", "request"),
    "requests.method": _has("method", "request"),
    "calls.status": _has("call_status", "external"),
    "calls.duration": _has("call_duration", "external"),
    "calls.dependency_field": _has("dep_text", None),
}
_IDENTITY = (
    "ms",
    "level",
    "message",
    "request_id",
    "req_status",
    "req_duration",
    "call_status",
    "call_duration",
    "line_path",
    "line_method",
    "dep_text",
)
OWN_IDS_LIMIT = 10_000


def _remember_own(run: _Run, ids: list[str]) -> None:
    """Request ids of the monitor's own requests, for their lines in later chunks."""
    for request_id in ids:
        run.own_ids.pop(request_id, None)
        run.own_ids[request_id] = None
    while len(run.own_ids) > OWN_IDS_LIMIT:
        del run.own_ids[next(iter(run.own_ids))]


def _pattern_rules(run: _Run) -> dict[str, str]:
    """The kind rules that test a field's text with a pattern: column -> pattern."""
    rules = {}
    if run.shape.request_when.pattern:
        rules["req_when"] = run.shape.request_when.pattern
    if run.shape.call_when is not None and run.shape.call_when.pattern:
        rules["call_when"] = run.shape.call_when.pattern
    return rules


_HASH_SEED = 20250115
_CACHE_LIMIT = 100_000  # distinct paths or messages remembered across chunks
_EVIDENCE = ("errors", "external_errors", "slowest")
_ZERO_KEY = -(2**62)  # durations of 0 ms, as an integer key (`ZERO_KEY` in the state)


def sketch_key(duration: pl.Expr) -> pl.Expr:
    """DDSketch's `LogarithmicMapping.key` of each duration, as a polars expression
    (the same ``ceil(log(v) / log(gamma))``); 0 ms is the zero bucket, < 0 none."""
    return (
        pl.when(duration > 0)
        .then((duration.log(2) * KEY_MULTIPLIER).ceil().cast(pl.Int64, strict=False))
        .when(duration == 0)
        .then(pl.lit(_ZERO_KEY, dtype=pl.Int64))
    )


def _timed(frame: pl.DataFrame, run: _Run) -> pl.LazyFrame:
    """The lines with their epoch ms (``ms``), the monitor's own marked (``own``:
    its requests and every line logged while serving them), and the path and
    method of a request line filled from its request's other lines (fastify
    writes them on "incoming request", the status on "request completed")."""
    moment = pl.col("time")
    if frame["timestamp"].null_count() < frame.height:
        parsed = pl.col("timestamp").str.to_datetime(format="%+", strict=False).dt.epoch("ms")
        moment = pl.coalesce(moment, parsed)
    request_id = pl.col("request_id")
    own = pl.col("own_self")
    fills = []
    if frame["request_id"].null_count() < frame.height:
        # Eager and cheap: the few ids of the monitor's own requests, then a lookup
        # (a window over every request id would cost as much as the parse).
        ids = frame.filter(pl.col("own") & request_id.is_not_null())["request_id"].unique()
        known = {*ids.to_list(), *run.own_ids}
        if known:
            own = own | request_id.is_in(list(known))
        if run.shape.path_on_other_line:  # fastify: "incoming request" has it
            fills = [
                pl.when(request_id.is_not_null())
                .then(pl.col(c).fill_null(pl.col(c).drop_nulls().first().over("request_id")))
                .otherwise(pl.col(c))
                .alias(c)
                for c in ("path", "method")
            ]
    # The identity of an error line (the dedupe across files) is what the line
    # itself says: the error log has no "incoming request" line to fill from.
    return (
        frame.lazy()
        .rename({"own": "own_self"})
        .with_row_index("row")
        .with_columns(line_path=pl.col("path"), line_method=pl.col("method"))
        .with_columns(*fills, ms=moment, own=own)
    )


def _is_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("at"), int | float)


def _duplicate_errors(run: _Run, errors: pl.DataFrame, path: str) -> list[int]:
    """Rows of error lines already counted from another file (this run or a previous one).

    Only across files: Pino multistream writes each error to combined.log and
    error.log. Within one file, two identical lines are two events (a burst
    of the same 500 in one millisecond), and both count.
    """
    duplicates: list[int] = []
    seen = run.seen
    here = zlib.crc32(path.encode())
    for row, minute, digest in errors.iter_rows():
        found = seen.get(digest)
        if found is None:
            seen[digest] = (minute, here)
        elif found[1] != here:
            duplicates.append(row)
    run.stats["duplicates"] += len(duplicates)
    return duplicates


def _cached(cache: dict[str, Any], keys: list[str], compute: Callable[[str], Any]) -> None:
    if len(cache) > _CACHE_LIMIT:
        cache.clear()
    for key in keys:
        if key not in cache:
            cache[key] = compute(key)


def _classify(
    run: _Run,
    rows: pl.LazyFrame,
    paths: pl.DataFrame,
    texts: pl.DataFrame,
    matched: dict[str, set[str]],
) -> pl.LazyFrame:
    """Which rows are calls (and to what), which are requests; their duration, status
    and sketch key.

    Routes are numbered (`_Run.route_id`) and the sketch key is an integer:
    polars groups numbers, Python names the few groups.
    """
    settings = run.settings
    shape = run.shape
    found = texts.to_series().to_list()
    _cached(run.dependencies, found, shape.dependency_of)
    named = {t: d for t in found if (d := run.dependencies[t]) is not None}
    source = "dep_text" if shape.dependency_field else "message"
    dependency = pl.col(source).replace_strict(named, default=None, return_dtype=pl.String)
    found = paths.to_series().to_list()
    _cached(run.routes, found, normalise_path)
    if len(run.route_names) > _CACHE_LIMIT:  # numbers are only used within a chunk
        run.route_ids.clear()
        run.route_names.clear()
        run.series.clear()
    route = pl.col("path").replace_strict(
        {p: run.route_id(run.routes[p]) for p in found},
        default=run.route_id("?"),
        return_dtype=pl.Int64,
    )
    is_call = _kind(shape.call_when, "call_when", matched) if shape.call_when else pl.lit(True)
    is_request = _kind(shape.request_when, "req_when", matched)
    rows = rows.with_columns(dep=pl.when(is_call).then(dependency), route=route)
    external = pl.col("dep").is_not_null()
    request = ~external & is_request
    duration = pl.when(request).then("req_duration").when(external).then("call_duration")
    status = pl.when(request).then("req_status").when(external).then("call_status")
    rows = rows.with_columns(
        external=external, request=request, duration=duration, status=status
    ).with_columns(key=sketch_key(pl.col("duration")))
    error = (pl.col("level") >= settings.error_level_number).fill_null(False)
    server_error = (pl.col("status") >= 500).fill_null(False)
    failed = error | server_error | (pl.col("external") & pl.col("call_error"))
    return rows.with_columns(
        error=error,
        server_error=server_error,
        slow=(pl.col("duration") > settings.slow_ms).fill_null(False),
        failed=failed,
    )


def _kind(rule: Rule, column: str, matched: dict[str, set[str]]) -> pl.Expr:
    """A kind rule as an expression: its field is present (and its text matched)."""
    present = pl.col(column).is_not_null()
    if rule.pattern is None:
        return present
    return present & pl.col(column).is_in(list(matched.get(column, ())))


_KINDS = ("minute", "request", "method", "route", "dep")


def _grouped(run: _Run, rows: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Counts per (minute, kind, method, route, dependency); the recent minutes' bins too."""
    counts = rows.group_by(*_KINDS).agg(
        n=pl.len(),
        e=pl.col("error").sum(),
        e5=pl.col("server_error").sum(),
        f=pl.col("failed").sum(),
        s=pl.col("slow").sum(),
    )
    oldest = run.now_minute - run.settings.recent_window_minutes
    bins = (
        rows.filter(
            pl.col("key").is_not_null()
            & (pl.col("minute") > oldest)
            & (pl.col("request") | pl.col("external"))
        )
        .group_by(*_KINDS, "key")
        .len()
    )
    return counts, bins


def _fold_counts(run: _Run, counts: pl.DataFrame) -> None:
    minute_of = run.aggregates.minute
    for minute, request, method, route, dep, n, e, e5, f, s in counts.iter_rows():
        bucket = minute_of(minute)
        bucket.add_counts("lines", n, e, s)
        if request:
            bucket.add_counts("requests", n, e5, s)
            bucket.add_counts(run.path_series(method, route), n, e5, s)
        if dep is not None:
            bucket.add_counts("dep:" + dep, n, f, s)


def _fold_bins(run: _Run, bins: pl.DataFrame) -> None:
    minute_of = run.aggregates.minute
    for minute, request, method, route, dep, key, count in bins.iter_rows():
        bucket = minute_of(minute)
        name = ZERO_KEY if key == _ZERO_KEY else str(key)
        if request:
            bucket.add_bin("requests", name, count)
            bucket.add_bin(run.path_series(method, route), name, count)
        if dep is not None:
            bucket.add_bin("dep:" + dep, name, count)


def _evidence_candidates(recent: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Per kind, this chunk's lines that may be kept as evidence: the latest, the slowest."""
    keep = evidence.KEEP
    picked = {
        "errors": recent.filter("error").sort("ms", maintain_order=True).tail(keep),
        "external_errors": recent.filter(pl.col("external") & pl.col("failed"))
        .sort("ms", maintain_order=True)
        .tail(keep),
        "slowest": recent.filter(pl.col("request") & pl.col("duration").is_not_null())
        .sort("duration", descending=True, maintain_order=True)
        .group_by("minute", maintain_order=True)
        .head(keep),
    }
    return {kind: rows.select("row", "ms", "duration", "dep") for kind, rows in picked.items()}


def _masked(entry: dict[str, Any], masker: Masker | None) -> dict[str, Any]:
    return entry if masker is None else {**entry, "line": masker.data(entry.get("line"))}


def _keep_evidence(
    run: _Run, picked: dict[str, pl.DataFrame], parsed: Parsed, chunk: bytes, path: str
) -> None:
    personal = frozenset(name.lower() for name in run.settings.redact_fields)
    name = os.path.basename(path)
    for kind, rows in picked.items():
        if rows.height == 0:
            continue
        lines = raw_lines(parsed, chunk, rows["row"].to_list())
        for (_, ms, duration, dependency), line in zip(rows.iter_rows(), lines, strict=True):
            entry = {"at": ms, "duration": duration, "file": name}
            if dependency is not None:
                entry["dependency"] = dependency
            entry["line"] = evidence.line_evidence(line, personal, run.masker)
            run.entries[kind].append(entry)
    run.entries["errors"] = evidence.latest(run.entries["errors"], since_ms=0)
    run.entries["external_errors"] = evidence.latest(run.entries["external_errors"], since_ms=0)
    run.entries["slowest"] = evidence.slowest_per_minute(run.entries["slowest"], since_ms=0)
