"""A chunk of JSON lines into the columns the metrics need.

The fast path is polars' NDJSON reader (multi-threaded, native) with an
explicit schema of only the fields used: everything else on a line is never
materialised. It is strict: one line it cannot read (not JSON, a ``level``
of ``"info"``, an ISO ``time``) fails the chunk, which is then read line by
line with orjson, coercing what can be coerced and counting what cannot.
Both paths give the same columns, so every later step is shared.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from synthetic.logs.settings import LogsSettings

LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "warning": 40, "error": 50, "fatal": 60}

# Canonical column -> dtype. The names in the file come from `LogsSettings`.
COLUMNS: dict[str, Any] = {
    "level": pl.Int64,
    "time": pl.Int64,
    "timestamp": pl.String,
    "duration": pl.Float64,
    "status": pl.Int64,
    "path": pl.String,
    "method": pl.String,
    "correlation": pl.String,
    "dependency": pl.String,
}


@dataclass
class Parsed:
    """The columns of one chunk's lines; ``row_line[i]`` is row i's line number."""

    frame: pl.DataFrame
    lines: list[bytes]
    row_line: list[int] | None  # None: row i is the i-th non-blank line (fast path)
    skipped: int  # lines that are not a JSON object


def _sources(settings: LogsSettings) -> dict[str, str]:
    """Canonical column -> the field name in the file (messages handled apart)."""
    sources = {
        "level": "level",
        "time": settings.time_field,
        "timestamp": settings.timestamp_field,
        "duration": settings.duration_field,
        "status": settings.status_field,
        "path": settings.path_field,
        "method": settings.method_field,
        "correlation": settings.correlation_field,
    }
    if settings.dependency_field is not None:
        sources["dependency"] = settings.dependency_field
    return sources


def _file_schema(settings: LogsSettings) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    for column, name in _sources(settings).items():
        schema.setdefault(name, COLUMNS[column])
    for name in settings.message_fields:
        schema.setdefault(name, pl.String)
    return schema


def _canonical(frame: pl.DataFrame, settings: LogsSettings) -> pl.DataFrame:
    sources = _sources(settings)
    columns = [
        (pl.col(sources[c]) if c in sources else pl.lit(None)).cast(dtype).alias(c)
        for c, dtype in COLUMNS.items()
    ]
    message = pl.coalesce([pl.col(name) for name in settings.message_fields]).alias("message")
    return frame.select(*columns, message.cast(pl.String))


def parse_chunk(chunk: bytes, settings: LogsSettings) -> Parsed:
    """The chunk's lines as columns; see the module docstring for the two paths."""
    if not chunk.strip():
        return Parsed(_empty(), [], [], 0)
    try:
        frame = pl.read_ndjson(io.BytesIO(chunk), schema=_file_schema(settings))
    except (pl.exceptions.PolarsError, ValueError):
        return _parse_lines(chunk, settings)
    return Parsed(_canonical(frame, settings), [], None, 0)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={**COLUMNS, "message": pl.String})


_INT64_MAX = 2**63 - 1


def number(value: Any, *, whole: bool) -> Any:
    """A number from a JSON value; None for what is not one (text, NaN, infinity,
    out of the 64-bit range): a line with an odd value still counts, without it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        if not math.isfinite(value):
            return None
        if whole:
            integer = int(value)
            return integer if -_INT64_MAX <= integer <= _INT64_MAX else None
        return float(value)
    except OverflowError:  # an int too large for a float
        return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _parse_lines(chunk: bytes, settings: LogsSettings) -> Parsed:
    """The slow, forgiving path: orjson line by line; what is not an object is skipped."""
    sources = _sources(settings)
    lines = chunk.split(b"\n")
    values: dict[str, list[Any]] = {c: [] for c in (*COLUMNS, "message")}
    row_line: list[int] = []
    skipped = 0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(record, dict):
            skipped += 1
            continue
        row_line.append(index)
        level = record.get("level")
        if isinstance(level, str):
            level = LEVELS.get(level.lower(), number(level, whole=True))
        else:
            level = number(level, whole=True)
        values["level"].append(level)
        moment = record.get(sources["time"])
        stamp = record.get(sources["timestamp"])
        if isinstance(moment, str) and stamp is None:
            moment, stamp = None, moment  # Pino's isoTime writes an ISO string in "time"
        values["time"].append(number(moment, whole=True))
        values["timestamp"].append(_text(stamp))
        values["duration"].append(number(record.get(sources["duration"]), whole=False))
        values["status"].append(number(record.get(sources["status"]), whole=True))
        for column in ("path", "method", "correlation"):
            values[column].append(_text(record.get(sources[column])))
        dependency = record.get(sources["dependency"]) if "dependency" in sources else None
        values["dependency"].append(_text(dependency))
        message = next(
            (record[name] for name in settings.message_fields if record.get(name) is not None),
            None,
        )
        values["message"].append(_text(message))
    frame = pl.DataFrame(values, schema={**COLUMNS, "message": pl.String})
    return Parsed(frame, lines, row_line, skipped)


def raw_lines(parsed: Parsed, chunk: bytes, rows: list[int]) -> list[bytes]:
    """The original lines of ``rows`` (for evidence)."""
    if not rows:
        return []
    if parsed.row_line is None and chunk.count(b"\n") == parsed.frame.height:
        return _nth_lines(chunk, rows)  # no blank line: row i is the i-th line
    if parsed.row_line is None:
        lines = chunk.split(b"\n")
        if len(lines) - 1 != parsed.frame.height:  # blank lines, which the reader skips
            lines = [line for line in lines if line.strip()]
        parsed.lines = lines
        parsed.row_line = list(range(len(lines)))
    return [parsed.lines[parsed.row_line[row]] for row in rows]


def _nth_lines(chunk: bytes, rows: list[int]) -> list[bytes]:
    """Lines ``rows`` (0-based) of ``chunk``, without splitting all of it."""
    wanted = sorted(set(rows))
    found: dict[int, bytes] = {}
    start = number = 0
    for row in wanted:
        while number < row:
            start = chunk.index(b"\n", start) + 1
            number += 1
        found[row] = chunk[start : chunk.index(b"\n", start)]
    return [found[row] for row in rows]
