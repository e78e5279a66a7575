"""JSON bodies read within bounds, with reasons that say what was wrong, and where."""

from __future__ import annotations

import math

import pytest

from synthetic.errors import NotJson, ResponseRejected
from synthetic.limits import MAX_JSON_VALUES
from synthetic.measure.jsonbody import parse_json


def reason(text: str, content_type: str = "application/json") -> str:
    with pytest.raises(NotJson) as info:
        parse_json(text, where="GET /health", content_type=content_type)
    return str(info.value)


def test_a_body_is_parsed() -> None:
    assert parse_json('{"status": "ok", "n": [1, 2.5]}', where="GET /x") == {
        "status": "ok",
        "n": [1, 2.5],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000, "JSON nested more than 1024 levels deep (line 1 column 1026)"),
        (
            "",
            "an empty body (application/json; "
            "Input is a zero-length, empty document at line 1 column 1)",
        ),
        (
            '{"status": "o',
            "a body that is not JSON (application/json; "
            "unexpected end of data at line 1 column 14)",
        ),
    ],
)
def test_what_is_not_read_is_said_plainly(text: str, expected: str) -> None:
    assert reason(text) == f"GET /health returned {expected}"


@pytest.mark.parametrize(
    ("text", "infinite", "sign"),
    [
        ('{"n": ' + "7" * 5000 + "}", True, 1),  # no int conversion (Python's 4300-digit cap)
        ('{"n": 1e400}', True, 1),
        ('{"n": -Infinity}', True, -1),
        ('{"n": NaN}', False, 1),
    ],
)
def test_numbers_json_cannot_hold_are_read_as_non_finite_floats(
    text: str, infinite: bool, sign: int
) -> None:
    """The check reading the field then says which one is not finite; the body's
    other fields stay readable."""
    value = parse_json('{"other": 3, ' + text[1:], where="GET /x")
    assert value["other"] == 3
    number = value["n"]
    assert math.isinf(number) if infinite else math.isnan(number)
    assert math.copysign(1, number) == sign


def test_a_content_type_from_the_target_is_made_printable() -> None:
    assert reason("<html>", "text/html\x1b]0;x\x07") == (
        "GET /health returned a body that is not JSON (text/html; "
        "unexpected character, expected a JSON value at line 1 column 1)"
    )


def test_a_byte_order_mark_is_skipped_and_the_last_duplicate_key_wins() -> None:
    assert parse_json('\ufeff{"a": 1}', where="GET /x") == {"a": 1}
    assert parse_json('{"status": "down", "status": "ok"}', where="GET /x") == {"status": "ok"}


def test_too_many_values_is_too_large_before_parsing() -> None:
    at_cap = "[" + ",".join("0" * 1 for _ in range(MAX_JSON_VALUES - 1)) + "]"
    assert len(parse_json(at_cap, where="GET /x")) == MAX_JSON_VALUES - 1
    with pytest.raises(
        ResponseRejected, match=r"^GET /x: response too large \(JSON of more than 500000 values\)$"
    ):
        parse_json("[" + "0," * MAX_JSON_VALUES + "0]", where="GET /x")
