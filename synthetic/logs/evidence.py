"""The log lines attached to a result, redacted before they are kept.

What the guide's greps show: the slowest requests and the latest errors. A
line is kept as parsed JSON with secrets (``authorization``, ``password``,
``token``, ...) and personal data (the configured ``redact_fields``: email,
name, phone, ip, ...) masked, e-mail addresses masked inside any text, and
long text cut, and the run's known secrets masked in every form (the
`Masker`): a target echoing the monitor's credentials into its log must not
put them in the state store. Redacted here, before the state store or a
worker's result ever holds it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from synthetic.logs.parse import number
from synthetic.measure.jsonbody import loads
from synthetic.redact import MASK, Masker, is_sensitive_key

KEEP = 20
MAX_TEXT = 500
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,24}")
# Credentials inside text: an Authorization value, a URL's user:password, a
# query parameter that carries a secret.
_CREDENTIALS = (
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {MASK}"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), f"://{MASK}@"),
    (
        re.compile(
            r"(?i)([?&](?:access_token|token|api_?key|key|password|passwd|secret|signature|sig)=)"
            r"[^&\s\"']+"
        ),
        rf"\1{MASK}",
    ),
)
MAX_DEPTH = 4


def redact(
    value: Any, personal: frozenset[str], *, masker: Masker | None = None, depth: int = 0
) -> Any:
    """A copy of a parsed line with secret and personal fields masked."""
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        return MASK
    if isinstance(value, dict):
        return {
            (key if masker is None else masker.text(key)): MASK
            if (is_sensitive_key(key) or key.lower() in personal) and item is not None
            else redact(item, personal, masker=masker, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, personal, masker=masker, depth=depth + 1) for item in value[:KEEP]]
    if isinstance(value, str):
        # Masked whole before it is cut: a secret across the cut would leave its start.
        text = value if masker is None else masker.text(value)
        for pattern, replacement in _CREDENTIALS:
            text = pattern.sub(replacement, text)
        text = _EMAIL.sub(MASK, text)  # after: user:password@host is not an address
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf": as the line had it, and valid JSON
    return value


def line_evidence(line: bytes, personal: frozenset[str], masker: Masker | None = None) -> Any:
    """One raw line as redacted JSON (or its redacted text, if it is not JSON)."""
    try:
        return redact(loads(line), personal, masker=masker)
    except ValueError:
        return redact(line.decode("utf-8", "replace"), personal, masker=masker)


def latest(entries: Iterable[dict[str, Any]], *, since_ms: int) -> list[dict[str, Any]]:
    """The `KEEP` latest entries at or after ``since_ms``, newest first."""
    kept = [e for e in entries if e["at"] >= since_ms]
    return sorted(kept, key=lambda e: (e["at"], e.get("seq", 0)), reverse=True)[:KEEP]


def slowest(entries: Iterable[dict[str, Any]], *, since_ms: int) -> list[dict[str, Any]]:
    """The `KEEP` slowest entries at or after ``since_ms``, slowest first."""
    kept = [e for e in entries if e["at"] >= since_ms]
    return sorted(kept, key=lambda e: (_duration(e), e["at"]), reverse=True)[:KEEP]


def _duration(entry: dict[str, Any]) -> float:
    found: float | None = number(entry.get("duration"), whole=False)
    return found or 0.0


def slowest_per_minute(entries: Iterable[dict[str, Any]], *, since_ms: int) -> list[dict[str, Any]]:
    """The `KEEP` slowest of each minute at or after ``since_ms``.

    What the state keeps: the window's 20 slowest are among them whichever
    minutes later leave the window.
    """
    by_minute: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry["at"] >= since_ms:
            by_minute.setdefault(entry["at"] // 60_000, []).append(entry)
    return [e for group in by_minute.values() for e in slowest(group, since_ms=since_ms)]
