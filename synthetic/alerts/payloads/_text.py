"""Text helpers every payload builder shares: cut, one-line, describe."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from synthetic.alerts.model import Alert
from synthetic.results import json_safe

ELLIPSIS = "…"

# Bidi embeddings, overrides and isolates: they can make a subject or a header
# read differently from what it says, so titles drop them.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BLANKS = re.compile(r"[ \t]+")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut.

    Characters are Python code points, the unit PagerDuty and Slack count in.
    Text that fits is returned unchanged.
    """
    if limit < 0:
        raise ValueError(f"truncate: limit must be >= 0, got {limit}")
    if len(text) <= limit:
        return text
    if limit == 0:
        return ""
    return text[: limit - 1] + ELLIPSIS


def one_line(text: str) -> str:
    """``text`` on one line: control characters and line breaks become spaces.

    For subjects, headers and summaries, where a CR/LF from a check's reason
    must never start a new header line.
    """
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI else c for c in text
    )
    return " ".join(cleaned.split())


def multi_line(text: str) -> str:
    """``text`` keeping its line breaks (normalised to LF), other controls removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = "".join(
        c
        if c in "\n\t" or not (unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI)
        else " "
        for c in text
    )
    return "\n".join(_BLANKS.sub(" ", line).rstrip() for line in cleaned.split("\n")).strip()


def state(alert: Alert) -> str:
    """``CRITICAL``, ``WARNING``, ``INFO`` for a trigger, ``RESOLVED`` for a resolve."""
    return "RESOLVED" if alert.action == "resolve" else alert.severity.upper()


def title(alert: Alert) -> str:
    """One line naming the transition: ``[TEST] CRITICAL P1 health.status (production)``."""
    words = [state(alert), alert.priority, alert.metric, f"({alert.environment})"]
    text = one_line(" ".join(w for w in words if w))
    return f"[TEST] {text}" if alert.test else text


def format_value(alert: Alert, *, limit: int = 1024) -> str:
    """The measured value with its unit, as text (``"n/a"`` when none)."""
    value = alert.value
    if value is None:
        return "n/a"
    if isinstance(value, str):
        text = value
    else:
        data = json_safe(value, max_chars=limit * 4)
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    if alert.unit:
        text = f"{text} {alert.unit}"
    return truncate(one_line(text), limit)


def thresholds(alert: Alert) -> str:
    """``warning: > 500; critical: > 1000`` (the expressions in force), or ``n/a``."""
    parts = [
        f"{name}: {expr}"
        for name, expr in (("warning", alert.warning), ("critical", alert.critical))
        if expr
    ]
    return one_line("; ".join(parts)) if parts else "n/a"


def json_size(data: Any) -> int:
    """Bytes ``data`` takes as JSON in the largest encoding a client may send.

    ``ensure_ascii`` escapes (6 or 12 bytes a character) and spaced separators
    are never smaller than UTF-8 and compact ones, so a body measured this way
    fits whichever way the HTTP client encodes it.
    """
    return len(json.dumps(data).encode("ascii"))
