"""Text as synthetic writes it out: one printable line, and UTC timestamps.

Text that came from a target, made safe to print: one line, no control characters, cut.

A body, a header or a parser's error message can carry terminal escape
sequences (ESC ``[31m``, an OSC ``ESC ] 0;title BEL`` that retitles the
window or writes a hyperlink), NULs, carriage returns that overwrite what
was printed, and megabytes of it. `printable` removes escape sequences
whole, turns every other non-printable character into a space, folds
whitespace, and cuts to a length, marking the cut with "…".

Masking secrets is not done here: that is the masker's, at the edges.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# ESC sequences (7-bit) and their 8-bit C1 forms, removed whole: OSC, DCS,
# SOS, PM and APC strings up to their terminator (BEL or ST) or the end;
# CSI with its parameters; any other ESC and the byte after it.
_ESCAPES = re.compile(
    r"(?:\x1b[\]P^_X]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -/]*[0-~]?"
)
_CUT = "…"


def printable(text: str, limit: int) -> str:
    """``text`` on one line of printable characters, at most ``limit`` long.

    The work is bounded by ``limit``, not by the length of ``text``.
    """
    head = text[: limit * 4 + 64]
    cleaned = _ESCAPES.sub("", head)
    shown = " ".join("".join(c if c.isprintable() else " " for c in cleaned).split())
    if len(shown) <= limit and len(head) == len(text):
        return shown
    return shown[: limit - 1] + _CUT


def iso_utc(epoch: float | None = None, *, timespec: str = "seconds") -> str:
    """``2026-11-24T10:15:00Z``: a moment (now by default) in UTC, ISO 8601 with Z."""
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
