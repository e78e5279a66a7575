"""A chunk of JSON lines into the columns the metrics need.

The fast path is polars' NDJSON reader (multi-threaded, native) with an
explicit schema of only the fields used, nested ones as structs
(``res.statusCode`` is the field ``statusCode`` of a struct ``res``):
everything else on a line is never materialised. Leaves are read as text or
as floats, which accept any JSON value or any number. It is strict: one line
it cannot read (not JSON, a ``res`` that is a string) fails the chunk, which
is then read line by line with orjson, coercing what can be coerced and
counting what cannot. Both paths give the same columns, so every later step
is shared.

A line orjson refuses for a number it cannot hold (``NaN``, ``Infinity``,
``1e400``: Python's ``json.dumps`` and some loggers write them) is read by
the standard library's parser instead (`loads`), so it still counts, its
level and status with it; the odd number itself reads as no value.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from synthetic.logs.paths import path_tree, shape_paths
from synthetic.logs.settings import LEVELS
from synthetic.logs.shapes import OWN_CORRELATION_PREFIX, OWN_USER_AGENT_PREFIX, LogShape, get_path
from synthetic.measure.jsonbody import loads

# Canonical column -> dtype, as the later steps see them.
COLUMNS: dict[str, Any] = {
    "level": pl.Int64,
    "time": pl.Int64,  # epoch ms
    "timestamp": pl.String,  # ISO 8601: the timestamp field, or a time that is text
    "message": pl.String,
    "req_status": pl.Int64,
    "req_duration": pl.Float64,
    "path": pl.String,
    "method": pl.String,
    "req_when": pl.String,
    "call_status": pl.Int64,
    "call_duration": pl.Float64,
    "call_error": pl.Boolean,
    "call_when": pl.String,
    "dep_text": pl.String,
    "request_id": pl.String,
    "own": pl.Boolean,
}
_NUMBERS = frozenset({"req_status", "req_duration", "call_status", "call_duration"})
_WHOLE = frozenset({"req_status", "call_status"})


@dataclass
class Parsed:
    """The columns of one chunk's lines; ``row_line[i]`` is row i's line number."""

    frame: pl.DataFrame
    lines: list[bytes]
    row_line: list[int] | None  # None: row i is the i-th non-blank line (fast path)
    skipped: int  # lines that are not a JSON object


@dataclass(frozen=True)
class Reading:
    """How a shape is read: each canonical column's field path, and the file schema."""

    sources: dict[str, tuple[str, ...]]  # single-field columns
    messages: tuple[tuple[str, ...], ...]
    correlation: tuple[tuple[str, ...], ...]
    user_agent: tuple[str, ...] | None
    schema: dict[str, Any]
    textual: frozenset[str] = frozenset()  # time, level: read as text
    presence: frozenset[str] = frozenset()  # kind rules that only ask whether a field is there


def reading(shape: LogShape, samples: Iterable[dict[str, Any]] = ()) -> Reading:
    """The paths of ``shape`` and the polars schema that reads them; a `ValueError`
    when one field would be both a value and an object (``err`` and ``err.code``).

    The time and the level are read as numbers (Pino's), or as text when the
    ``samples`` show text there (an ISO ``time``, ``"level": "info"``): text
    accepts both, numbers parse faster. A chunk that does not fit the schema
    takes the line-by-line path.
    """
    paths = shape_paths(shape, samples)
    return Reading(
        paths.sources,
        paths.messages,
        paths.correlation,
        paths.user_agent,
        _schema(path_tree(paths)),
        paths.textual,
        paths.presence,
    )


_DTYPES = {"number": pl.Float64, "text": pl.String}


def _schema(tree: dict[str, Any]) -> dict[str, Any]:
    return {
        key: pl.Struct(_schema(value)) if isinstance(value, dict) else _DTYPES[value]
        for key, value in tree.items()
    }


def _column(path: tuple[str, ...]) -> pl.Expr:
    expr = pl.col(path[0])
    for key in path[1:]:
        expr = expr.struct.field(key)
    return expr


def _finite(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.is_finite()).then(expr)


def _level(value: pl.Expr, *, text: bool) -> pl.Expr:
    """Pino's numeric levels, or their names (``"info"``, ``"error"``)."""
    numeric = _finite(value.cast(pl.Float64, strict=False)).cast(pl.Int64, strict=False)
    if not text:
        return numeric
    named = value.str.to_lowercase().replace_strict(LEVELS, default=None, return_dtype=pl.Int64)
    return pl.coalesce(named, numeric)


def _canonical(frame: pl.DataFrame, read: Reading) -> pl.DataFrame:
    exprs = []
    for column, dtype in COLUMNS.items():
        path = read.sources.get(column)
        if column in ("message", "own"):
            continue
        if path is None:
            exprs.append(pl.lit(None, dtype=dtype).alias(column))
            continue
        value = _column(path)
        if column == "time":
            value = _finite(value.cast(pl.Float64, strict=False)).cast(pl.Int64, strict=False)
        elif column == "timestamp" and "time" in read.textual:
            value = pl.coalesce(value, _column(read.sources["time"]))
        elif column == "level":
            value = _level(value, text=column in read.textual)
        elif column == "call_error":
            value = value.is_not_null()
        elif column in read.presence:  # a kind rule without a pattern: is it there
            value = pl.when(value.is_not_null()).then(pl.lit(""))
        elif column in _NUMBERS:
            value = _finite(value.cast(pl.Float64, strict=False))
            if column in _WHOLE:
                value = value.cast(pl.Int64, strict=False)
        exprs.append(value.cast(dtype, strict=False).alias(column))
    message = pl.coalesce([_column(p) for p in read.messages]) if read.messages else pl.lit(None)
    own = pl.lit(False)
    for path in read.correlation:
        own = own | _column(path).str.starts_with(OWN_CORRELATION_PREFIX).fill_null(False)
    if read.user_agent:
        own = own | _column(read.user_agent).str.starts_with(OWN_USER_AGENT_PREFIX).fill_null(False)
    exprs += [message.cast(pl.String).alias("message"), own.alias("own")]
    return frame.select(exprs).select(list(COLUMNS))


def parse_chunk(chunk: bytes, read: Reading) -> Parsed:
    """The chunk's lines as columns; see the module docstring for the two paths."""
    if not chunk.strip():
        return Parsed(empty(), [], [], 0)
    try:
        frame = pl.read_ndjson(io.BytesIO(chunk), schema=read.schema)
        return Parsed(_canonical(frame, read), [], None, 0)
    except (pl.exceptions.PolarsError, ValueError):
        return _parse_lines(chunk, read)


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=COLUMNS)


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
    if value is None:
        return None
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def level_number(value: Any) -> int | None:
    if isinstance(value, str):
        found = LEVELS.get(value.lower())
        return found if found is not None else number(value, whole=True)
    found_number: int | None = number(value, whole=True)
    return found_number


def _is_own(record: dict[str, Any], read: Reading) -> bool:
    for path in read.correlation:
        value = get_path(record, path)
        if isinstance(value, str) and value.startswith(OWN_CORRELATION_PREFIX):
            return True
    agent = get_path(record, read.user_agent) if read.user_agent else None
    return isinstance(agent, str) and agent.startswith(OWN_USER_AGENT_PREFIX)


def _row(record: dict[str, Any], read: Reading) -> dict[str, Any]:
    """One line's canonical columns, as the fast path makes them."""

    def at(column: str) -> Any:
        path = read.sources.get(column)
        return get_path(record, path) if path else None

    moment, stamp = at("time"), at("timestamp")
    if stamp is None and isinstance(moment, str):
        stamp = moment  # Pino's isoTime writes an ISO string in "time"
    found = (get_path(record, p) for p in read.messages)
    row: dict[str, Any] = {column: _text(at(column)) for column in COLUMNS}
    row.update(
        {column: number(at(column), whole=column in _WHOLE) for column in _NUMBERS},
        time=None if isinstance(moment, str) else number(moment, whole=True),
        timestamp=_text(stamp),
        level=level_number(at("level")),
        call_error=at("call_error") is not None,
        message=_text(next((m for m in found if m is not None), None)),
        own=_is_own(record, read),
    )
    return row


def _parse_lines(chunk: bytes, read: Reading) -> Parsed:
    """The slow, forgiving path: orjson line by line; what is not an object is skipped."""
    lines = chunk.split(b"\n")
    values: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    row_line: list[int] = []
    skipped = 0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except ValueError:  # orjson's and the standard library's decode errors
            skipped += 1
            continue
        if not isinstance(record, dict):
            skipped += 1
            continue
        row_line.append(index)
        for column, value in _row(record, read).items():
            values[column].append(value)
    frame = pl.DataFrame(values, schema=COLUMNS)
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
