"""A response body read as JSON, within bounds, with reasons a person can act on.

Parsed by orjson (RFC 8259, nesting at most `MAX_JSON_DEPTH` levels), and
where orjson refuses a number it cannot hold (``NaN``, ``Infinity`` as
JavaScript writes them, a number past a double's range) by the standard
library, which reads those as floats: the check that reads the value then
says which field is not finite, and the body's other fields stay readable.
Before parsing, a cheap count of the body's values guards memory (each
parsed value is a Python object): a body of more than `MAX_JSON_VALUES` is
`ResponseRejected`, too large. JSON nested too deep and any other invalid
JSON are a `MeasurementError` (`NotJson`) saying so plainly; integers beyond
64 bits read as floats, and beyond 400 digits as infinity. Duplicate keys:
the last wins, as in JavaScript's JSON.parse.
A UTF-8 byte order mark is skipped (RFC 8259 allows a parser to).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from synthetic.errors import MeasurementError, NotJson, ResponseRejected
from synthetic.limits import MAX_JSON_DEPTH, MAX_JSON_VALUES
from synthetic.text import printable

__all__ = ["NotJson", "loads", "parse_json"]

_NUMBER = re.compile(r"-?[0-9][0-9.eE+\-]*")
_NOT_NUMBERS = ("NaN", "Infinity")


def parse_json(text: str, *, where: str, content_type: str = "") -> Any:
    """``text`` parsed; ``where`` (``GET /health``) names it in every error."""
    text = text.removeprefix("\ufeff")
    values = text.count(",") + text.count("[") + text.count("{")
    problem: MeasurementError
    if values > MAX_JSON_VALUES:
        problem = ResponseRejected(
            f"{where}: response too large (JSON of more than {MAX_JSON_VALUES} values)",
            url=where,
        )
    else:
        try:
            return loads(text)
        except orjson.JSONDecodeError as exc:
            problem = NotJson(_reason(text, exc, where, content_type))
    # The error's traceback keeps this frame alive (a failed check's, until the
    # run ends): it must not keep megabytes of a body with it.
    del text
    raise problem


# Digits past which an integer is read as a float (infinity), not converted:
# Python refuses to convert more than 4300 digits.
_LONGEST_INT = 400


def _int(text: str) -> int | float:
    return int(text) if len(text) <= _LONGEST_INT else float(text)


def loads(data: bytes | str) -> Any:
    """JSON by orjson; else, when orjson refused a number it cannot hold (NaN,
    Infinity, one past a double), by the standard library, which reads those
    as floats. orjson's `JSONDecodeError` (a `ValueError`) when it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raw = data.encode() if isinstance(data, str) else data
        if b"NaN" not in raw and b"Infinity" not in raw and "infinity" not in str(exc):
            raise
        try:
            return json.loads(data, parse_int=_int)
        except (ValueError, RecursionError):  # orjson's error says it best
            raise exc from None


def _reason(text: str, exc: orjson.JSONDecodeError, where: str, content_type: str) -> str:
    at = f"line {exc.lineno} column {exc.colno}"
    if exc.msg.startswith("depth limit"):
        return f"{where} returned JSON nested more than {MAX_JSON_DEPTH} levels deep ({at})"
    for word in _NOT_NUMBERS:
        if text.startswith(word, exc.pos):
            sign = "-" if text[exc.pos - 1 : exc.pos] == "-" else ""
            return f"{where} returned {sign}{word} at {at}, which is not a JSON value"
    number = _NUMBER.match(text, exc.pos)
    if number is not None and "infinity" in exc.msg:
        token = number.group()
        digits = sum(c.isdigit() for c in token)
        if digits > 20:
            return f"{where} returned a number of {digits} digits at {at}, too large to read"
        return f"{where} returned a number out of range ({printable(token, 30)}) at {at}"
    kind = printable(content_type, 60) or "no content type"
    body = "an empty body" if not text.strip() else "a body that is not JSON"
    return f"{where} returned {body} ({kind}; {exc.msg} at {at})"
