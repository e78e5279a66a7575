"""Text from a target made printable: escape sequences removed whole, cut, one line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthetic.outcome import MAX_REASON, one_line, shown_reason
from synthetic.text import printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("ok", "ok"),
        ("\x1b[31mred\x1b[0m", "red"),  # CSI (colour)
        ("\x1b]0;window title\x07after", "after"),  # OSC ended by BEL
        ("\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST
        ("\x1bPdevice control\x1b\\x", "x"),  # DCS
        ("\x9b31mC1 CSI", "C1 CSI"),  # the 8-bit forms
        ("\x9d0;title\x9cafter", "after"),
        ("a\rb\nc\td\x00e\x7ff", "a b c d e f"),  # carriage return, NUL, DEL: spaces
        ("left\u202eright", "left right"),  # a bidi override is not printable
        ("\x1b[2J\x1b[H", ""),  # clear screen, cursor home: nothing left
    ],
)
def test_escape_sequences_go_whole_other_controls_become_spaces(text: str, shown: str) -> None:
    assert printable(text, 80) == shown


def test_long_text_is_cut_with_a_mark_and_the_work_is_bounded() -> None:
    assert printable("a" * 100, 10) == "a" * 9 + "…"
    assert printable("word " * 1_000_000, 20) == "word word word word…"


def test_one_line_is_the_reason_maker() -> None:
    reason = one_line('metric: GET /metrics is not valid (Invalid labels: x="a"\x1b]0;pwned\x07)')
    assert reason == 'metric: GET /metrics is not valid (Invalid labels: x="a")'
    # kept a little longer until masked; what is shown is cut to MAX_REASON
    assert MAX_REASON < len(one_line("x" * 10_000)) <= MAX_REASON + 256
    assert len(shown_reason(one_line("x" * 10_000), str)) == MAX_REASON


@given(st.text())
def test_nothing_printed_is_a_control_character(text: str) -> None:
    shown = printable(text, 120)
    assert len(shown) <= 120
    assert all(c.isprintable() for c in shown)
    assert shown == shown.strip()
