"""Slack incoming-webhook bodies: Block Kit with a plain-text fallback.

Limits (REFERENCE.md and Block Kit): 50 blocks, header text 150 characters,
section text 3000, a section's fields 10 of 2000 each, a context's elements
10, a button's text 75 and its URL 3000. User text in ``mrkdwn`` has ``&``,
``<`` and ``>`` escaped as Slack asks, so a reason cannot forge a link or a
mention; escaping happens before the cut is measured.
"""

from __future__ import annotations

from typing import Any

from synthetic.alerts.model import Alert
from synthetic.alerts.payloads._text import (
    format_value,
    multi_line,
    one_line,
    thresholds,
    title,
    truncate,
)

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_CONTEXT = 3000
MAX_BUTTON_URL = 3000
MAX_FALLBACK = 3000

_EMOJI = {
    "critical": ":rotating_light:",
    "warning": ":warning:",
    "info": ":information_source:",
}
_RESOLVED = ":white_check_mark:"
_TEST = ":test_tube:"


def escape(text: str) -> str:
    """``text`` safe in ``mrkdwn``: ``&``, ``<``, ``>`` as Slack's entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """``text`` escaped and cut so the escaped form is at most ``limit`` characters.

    The cut is made on the raw text, so an entity (``&amp;``) is never split.
    """
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    # The escaped length grows with the raw prefix kept: find the longest that fits.
    low, high = 0, min(limit, len(text) - 1)
    while low < high:
        middle = (low + high + 1) // 2
        if len(escape(truncate(text, middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    return escape(truncate(text, low))


def message(alert: Alert) -> dict[str, Any]:
    """The webhook body for ``alert``: ``{"text": fallback, "blocks": [...]}``."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _header(alert), "emoji": True},
        },
        _section(_reason(alert)),
        {"type": "section", "fields": [_field(name, text) for name, text in _facts(alert)]},
    ]
    evidence = multi_line(alert.evidence_summary or "")
    if evidence:
        blocks.append(_section(fit(f"Evidence:\n{evidence}", MAX_SECTION)))
    url = (alert.runbook or "").strip()
    if _linkable(url):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open runbook", "emoji": True},
                        "url": url,
                        "action_id": "runbook",
                    }
                ],
            }
        )
    blocks.append({"type": "context", "elements": _context(alert)})
    return {"text": _fallback(alert), "blocks": blocks[:MAX_BLOCKS]}


def _header(alert: Alert) -> str:
    emoji = _RESOLVED if alert.action == "resolve" else _EMOJI[alert.severity]
    if alert.test:
        emoji = f"{_TEST} {emoji}"
    # plain_text is not parsed for entities or links: no escaping, only one line.
    return truncate(f"{emoji} {title(alert)}", MAX_HEADER)


def _reason(alert: Alert) -> str:
    reason = multi_line(alert.summary) or "(no reason given)"
    if alert.action == "resolve":
        reason = f"Resolved: {reason}"
    if alert.test:
        reason = f"This is a test alert (synthetic alerts test), not an incident. {reason}"
    return fit(reason, MAX_SECTION)


def _facts(alert: Alert) -> list[tuple[str, str]]:
    facts = [
        ("Value", format_value(alert)),
        ("Thresholds", thresholds(alert)),
        ("Environment", alert.environment),
        ("Priority", alert.priority),
        ("Component", alert.component or "n/a"),
        ("Check", alert.check_id),
        ("Started", alert.started_at),
    ]
    if alert.ended_at:
        facts.append(("Ended", alert.ended_at))
    return facts


def _field(name: str, text: str) -> dict[str, str]:
    head = f"*{name}*\n"
    return {"type": "mrkdwn", "text": head + fit(one_line(text) or "n/a", MAX_FIELD - len(head))}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(alert: Alert) -> list[dict[str, str]]:
    runbook = one_line(alert.runbook or "")
    # Slack turns an escaped URL in mrkdwn into a link by itself.
    first = f"Runbook: {runbook}" if runbook else "No runbook linked"
    return [
        {"type": "mrkdwn", "text": fit(first, MAX_CONTEXT)},
        {"type": "mrkdwn", "text": fit(f"Priority: {one_line(alert.priority)}", 300)},
        {"type": "mrkdwn", "text": fit(f"Run: {one_line(alert.run_id)}", 300)},
    ]


def _linkable(url: str) -> bool:
    return (
        url.startswith(("https://", "http://"))
        and len(url) <= MAX_BUTTON_URL
        and not any(c.isspace() or ord(c) < 32 for c in url)
    )


def _fallback(alert: Alert) -> str:
    # Runbook before the reason: a long reason is cut, the link is not.
    parts = [title(alert), f"runbook: {one_line(alert.runbook or '') or 'none'}"]
    reason = one_line(alert.summary)
    if reason:
        parts.append(reason)
    return fit(" | ".join(parts), MAX_FALLBACK)
