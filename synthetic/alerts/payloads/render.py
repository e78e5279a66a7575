"""`render`: the request one receiver would get for one alert, as plain data.

Pure (no network; the clock is an argument): a dry run writes it to a file,
`synthetic.alerts.delivery.Deliverer` sends it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any

from synthetic.alerts.model import Alert
from synthetic.alerts.payloads import alertmanager, pagerduty, slack, webhook
from synthetic.alerts.payloads import email as email_payload
from synthetic.alerts.settings import Receiver


@dataclass(frozen=True)
class Rendered:
    """What would be sent to one receiver for one alert: plain JSON data.

    ``request`` is, for HTTP, ``{"method", "url", "json"}`` (and ``"headers"``
    when the receiver has some); for email, ``{"smtp": "host:port", "from",
    "to", "subject", "message"}`` with the whole RFC 5322 text. It holds the
    receiver's secrets as they will be sent: mask it before writing it out.
    """

    receiver: str
    type: str
    request: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"receiver": self.receiver, "type": self.type, "request": self.request}


def render(receiver: Receiver, alert: Alert, *, now: float) -> Rendered:
    """The request ``receiver`` would get for ``alert`` at ``now`` (epoch seconds).

    A receiver that is not ready still renders; what it lacks is empty.
    """
    if receiver.type == "email":
        mail = _mail(receiver, alert)
        request: dict[str, Any] = {
            "smtp": f"{receiver.smtp_host or ''}:{receiver.smtp_port}",
            "from": receiver.email_from or "",
            "to": list(receiver.email_to),
            "subject": str(mail["Subject"]),
            "message": mail.as_string(),
        }
        return Rendered(receiver=receiver.name, type=receiver.type, request=request)
    url = receiver.url or ""
    body: Any
    if receiver.type == "pagerduty":
        body = pagerduty.event(alert, routing_key=receiver.routing_key or "")
    elif receiver.type == "slack":
        body = slack.message(alert)
    elif receiver.type in ("webhook", "custom"):  # a plugin's receiver gets the document
        body = webhook.document(alert)
    elif receiver.type == "alertmanager":
        url = f"{url.rstrip('/')}/api/v2/alerts"
        body = _alertmanager(receiver, alert, now=now)
    else:
        raise ValueError(f"receiver {receiver.name!r}: unknown type {receiver.type!r}")
    request = {"method": "POST", "url": url, "json": body}
    if receiver.headers:
        request["headers"] = dict(receiver.headers)
    return Rendered(receiver=receiver.name, type=receiver.type, request=request)


def _alertmanager(receiver: Receiver, alert: Alert, *, now: float) -> list[dict[str, Any]]:
    """A trigger expires ``ttl_s`` from now; a resolve ends at its ``ended_at``
    (now when it has none or a later one); an escalation also ends the alert
    of the previous severity, which Alertmanager holds as another alert."""
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    stamp = moment.isoformat()
    batch = [alert]
    if alert.action == "resolve":
        ended = alertmanager.parse_time(alert.ended_at) if alert.ended_at else None
        if ended is None or ended > moment:
            batch = [replace(alert, ended_at=stamp)]
    elif alert.kind == "escalate" and alert.previous_severity:
        previous = replace(
            alert,
            action="resolve",
            kind="resolve",
            severity=alert.previous_severity,
            previous_severity=None,
            ended_at=stamp,
        )
        batch = [previous, alert]
    expires = None
    if receiver.ttl_s is not None:
        expires = moment + datetime.timedelta(seconds=receiver.ttl_s)
    return alertmanager.alerts(batch, expires_at=expires)


def _mail(receiver: Receiver, alert: Alert) -> EmailMessage:
    # A receiver without recipients is not ready; it still renders, with an empty To.
    return email_payload.message(
        alert, sender=receiver.email_from or "", recipients=list(receiver.email_to) or [""]
    )
