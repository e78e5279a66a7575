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
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from synthetic.logs import evidence
from synthetic.logs.aggregate import KEY_MULTIPLIER, ZERO_KEY, Aggregates
from synthetic.logs.parse import Parsed, parse_chunk, raw_lines
from synthetic.logs.positions import LogFileError, LogReader, Position
from synthetic.logs.settings import LogsSettings

STATE_VERSION = 1
_ID_SEGMENT = re.compile(
    r"/(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|[^/]*@[^/]*)(?=/|$)"
)


def normalise_path(path: str | None) -> str:
    """``/api/invoices/123?x=1`` -> ``/api/invoices/:id``: one series per route."""
    if not path:
        return "?"
    return _ID_SEGMENT.sub("/:id", path.split("?", 1)[0])[:200]


def settings_digest(settings: LogsSettings) -> str:
    """Aggregates made under other field names or mapping are not comparable."""
    return hashlib.blake2b(settings.model_dump_json().encode(), digest_size=8).hexdigest()


@dataclass
class _Run:
    settings: LogsSettings
    now_ms: int
    aggregates: Aggregates
    seen: dict[int, int]  # hash of an error line -> its minute
    entries: dict[str, list[dict[str, Any]]]
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("lines", "skipped", "untimed", "future", "outside_window", "duplicates", "bytes_read"),
            0,
        )
    )

    @property
    def now_minute(self) -> int:
        return self.now_ms // 60_000

    def since(self, minutes: int) -> int:
        """The first epoch ms of a window of ``minutes`` whole minutes ending now."""
        return (self.now_minute - minutes + 1) * 60_000


def analyse(
    paths: Sequence[str],
    settings: LogsSettings,
    previous: Mapping[str, Any] | None,
    *,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """Read what is new in ``paths`` and return ``{"state": ..., "run": ...}`` (JSON)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    digest = settings_digest(settings)
    if (
        not previous
        or previous.get("version") != STATE_VERSION
        or (previous.get("settings") != digest)
    ):
        previous = {}
    run = _Run(
        settings=settings,
        now_ms=now_ms,
        aggregates=Aggregates.from_json(previous.get("minutes")),
        seen={int(h): int(m) for h, m in dict(previous.get("seen") or {}).items()},
        entries={
            name: [e for e in previous.get(name) or [] if isinstance(e, dict) and "at" in e]
            for name in ("slowest", "errors", "external_errors")
        },
    )
    positions = dict(previous.get("files") or {})
    files: dict[str, dict[str, Any]] = {}
    new_positions: dict[str, Any] = {}
    for path in paths:
        old = Position.from_json(positions.get(path))
        reader = LogReader(Path(path), old)
        report: dict[str, Any] = {"error": None}
        try:
            _fold_all(run, reader.chunks(), path)
        except LogFileError as exc:
            report["error"] = str(exc)
        position = reader.position if report["error"] is None else old
        if position is not None:
            new_positions[path] = position.to_json()
        report.update(
            bytes_read=reader.stats.bytes_read,
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
        "analysed_at": now_ms,
        "files": new_positions,
        "minutes": run.aggregates.to_json(),
        "seen": {str(h): m for h, m in run.seen.items()},
        **run.entries,
    }
    return {"state": state, "run": {"now_ms": now_ms, "files": files, **run.stats}}


def _prune(run: _Run) -> None:
    settings = run.settings
    run.aggregates.prune(
        run.now_minute, keep=settings.longest_window, keep_bins=settings.recent_window_minutes
    )
    oldest_seen = run.now_minute - settings.recent_window_minutes
    run.seen = {h: m for h, m in run.seen.items() if m > oldest_seen}
    recent = run.since(settings.recent_window_minutes)
    run.entries["errors"] = evidence.latest(run.entries["errors"], since_ms=recent)
    run.entries["slowest"] = evidence.slowest_per_minute(run.entries["slowest"], since_ms=recent)
    run.entries["external_errors"] = evidence.latest(
        run.entries["external_errors"], since_ms=recent
    )


def _timed(frame: pl.DataFrame) -> pl.DataFrame:
    moment = pl.col("time")
    if frame["timestamp"].null_count() < frame.height:
        parsed = pl.col("timestamp").str.to_datetime(format="%+", strict=False).dt.epoch("ms")
        moment = pl.coalesce(moment, parsed)
    return frame.with_row_index("row").with_columns(ms=moment)


def _fold_all(run: _Run, chunks: Iterator[bytes], path: str) -> None:
    """Parse the next chunk while this one is folded (polars releases the GIL)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="logs-parse") as pool:
        pending: tuple[bytes, Future[Parsed]] | None = None
        for chunk in chunks:
            if not chunk:
                continue
            upcoming = (chunk, pool.submit(parse_chunk, chunk, run.settings))
            if pending is not None:
                _fold(run, pending[0], pending[1].result(), path)
            pending = upcoming
        if pending is not None:
            _fold(run, pending[0], pending[1].result(), path)


def _fold(run: _Run, chunk: bytes, parsed: Parsed, path: str) -> None:
    """Add one parsed chunk to the run's aggregates and evidence."""
    settings = run.settings
    frame = _timed(parsed.frame)
    stats = run.stats
    stats["skipped"] += parsed.skipped
    stats["lines"] += frame.height + parsed.skipped
    stats["untimed"] += frame["ms"].null_count()
    frame = frame.filter(pl.col("ms").is_not_null())
    latest_ms = run.now_ms + int(settings.max_clock_skew_s * 1000)
    first_ms = run.since(settings.longest_window)
    stats["future"] += int((frame["ms"] > latest_ms).sum())
    stats["outside_window"] += int((frame["ms"] < first_ms).sum())
    frame = frame.filter(pl.col("ms").is_between(first_ms, latest_ms)).with_columns(
        minute=pl.min_horizontal(pl.col("ms") // 60_000, pl.lit(run.now_minute))
    )
    if frame.height == 0:
        return
    frame = _drop_duplicate_errors(run, frame)
    frame = _classify(frame, settings)
    _count(run, frame)
    _bins(run, frame)
    _keep_evidence(run, frame, parsed, chunk, path)


def _drop_duplicate_errors(run: _Run, frame: pl.DataFrame) -> pl.DataFrame:
    errors = frame.filter(pl.col("level") >= run.settings.error_level)
    if errors.height == 0:
        return frame
    identity = pl.struct("ms", "level", "message", "correlation", "status", "duration", "path")
    hashed = errors.select("row", "minute", h=identity.hash(seed=20250115))
    duplicates: list[int] = []
    for row, minute, digest in hashed.iter_rows():
        if digest in run.seen:
            duplicates.append(row)
        else:
            run.seen[digest] = minute
    if not duplicates:
        return frame
    run.stats["duplicates"] += len(duplicates)
    return frame.filter(~pl.col("row").is_in(duplicates))


def _classify(frame: pl.DataFrame, settings: LogsSettings) -> pl.DataFrame:
    """Which rows are external calls (and to what), which are requests, the sketch key."""
    if settings.dependency_field is not None:
        dependency = pl.col("dependency").str.strip_chars().str.to_lowercase()
        dependency = pl.when(dependency != "").then(dependency)
    else:
        messages = frame["message"].drop_nulls().unique().to_list()
        named = {m: d for m in messages if (d := settings.dependency_of(m)) is not None}
        dependency = pl.col("message").replace_strict(named, default=None, return_dtype=pl.String)
    paths = frame["path"].drop_nulls().unique().to_list()
    routes = {p: normalise_path(p) for p in paths}
    duration = pl.col("duration")
    key = (
        pl.when(duration > 0)
        .then((duration.log(2) * KEY_MULTIPLIER).ceil().cast(pl.Int64).cast(pl.String))
        .when(duration == 0)
        .then(pl.lit(ZERO_KEY))
    )
    route = pl.col("path").replace_strict(routes, default="?", return_dtype=pl.String)
    frame = frame.with_columns(dep=dependency, key=key)
    error = pl.col("level") >= settings.error_level
    return frame.with_columns(
        external=pl.col("dep").is_not_null(),
        request=pl.col("dep").is_null() & pl.col("status").is_not_null(),
        error=error.fill_null(False),
        slow=(duration > settings.slow_ms).fill_null(False),
        path_series=pl.concat_str(
            pl.lit("path:"), pl.col("method").fill_null("").str.to_uppercase(), pl.lit(" "), route
        ),
        dep_series=pl.concat_str(pl.lit("dep:"), pl.col("dep")),
        failed=(error | (pl.col("status") >= 500)).fill_null(False),
    )


def _count(run: _Run, frame: pl.DataFrame) -> None:
    def tallies(rows: pl.DataFrame, series: pl.Expr, errors: pl.Expr) -> pl.DataFrame:
        return rows.group_by("minute", series.alias("series")).agg(
            n=pl.len(), e=errors.sum(), s=pl.col("slow").sum()
        )

    requests = frame.filter("request")
    external = frame.filter("external")
    server_error = (pl.col("status") >= 500).fill_null(False)
    parts = [
        tallies(frame, pl.lit("lines"), pl.col("error")),
        tallies(requests, pl.lit("requests"), server_error),
        tallies(requests, pl.col("path_series"), server_error),
        tallies(external, pl.col("dep_series"), pl.col("failed")),
    ]
    for minute, series, n, e, s in pl.concat(parts, how="vertical_relaxed").iter_rows():
        run.aggregates.minute(minute).add_counts(series, n, e, s)


def _bins(run: _Run, frame: pl.DataFrame) -> None:
    recent = frame.filter(
        pl.col("key").is_not_null()
        & (pl.col("minute") > run.now_minute - run.settings.recent_window_minutes)
    )
    if recent.height == 0:
        return
    requests = recent.filter("request")
    parts = [
        requests.select("minute", series=pl.lit("requests"), key="key"),
        requests.select("minute", series="path_series", key="key"),
        recent.filter("external").select("minute", series="dep_series", key="key"),
    ]
    grouped = pl.concat(parts).group_by("minute", "series", "key").len()
    for minute, series, key, count in grouped.iter_rows():
        run.aggregates.minute(minute).add_bin(series, key, count)


def _keep_evidence(run: _Run, frame: pl.DataFrame, parsed: Parsed, chunk: bytes, path: str) -> None:
    settings = run.settings
    keep = evidence.KEEP
    # Evidence comes from the recent window only: a cold run over an hour of
    # logs looks for lines in the last minutes' chunks, not in every chunk.
    recent = pl.col("ms") >= run.since(settings.recent_window_minutes)
    if int(frame["ms"].max() or 0) < run.since(settings.recent_window_minutes):  # type: ignore[arg-type]
        return
    picked = {
        "errors": frame.filter(pl.col("error") & recent).sort("ms").tail(keep),
        "external_errors": frame.filter(pl.col("external") & pl.col("failed") & recent)
        .sort("ms")
        .tail(keep),
        "slowest": frame.filter(pl.col("request") & pl.col("duration").is_not_null() & recent)
        .sort("duration", descending=True)
        .group_by("minute", maintain_order=True)
        .head(keep),
    }
    personal = frozenset(name.lower() for name in settings.redact_fields)
    name = os.path.basename(path)
    for kind, rows in picked.items():
        if rows.height == 0:
            continue
        lines = raw_lines(parsed, chunk, rows["row"].to_list())
        for (ms, duration, dependency), line in zip(
            rows.select("ms", "duration", "dep").iter_rows(), lines, strict=True
        ):
            entry = {"at": ms, "duration": duration, "file": name}
            if dependency is not None:
                entry["dependency"] = dependency
            entry["line"] = evidence.line_evidence(line, personal)
            run.entries[kind].append(entry)
    run.entries["errors"] = evidence.latest(run.entries["errors"], since_ms=0)
    run.entries["external_errors"] = evidence.latest(run.entries["external_errors"], since_ms=0)
    run.entries["slowest"] = evidence.slowest_per_minute(run.entries["slowest"], since_ms=0)
