"""Payload builders: one pure function per receiver, an `Alert` in, a body out.

No network, no clock, no configuration: the same alert always gives the same
payload, each within its service's documented limits (see each module), each
carrying the alert's runbook link and priority. The alert is never changed.

- `pagerduty.event`: PagerDuty Events API v2 body (trigger or resolve).
- `slack.message`: Slack incoming-webhook body (Block Kit with a text fallback).
- `alertmanager.alerts`: Alertmanager API v2 postable alerts.
- `email.message`: an `email.message.EmailMessage` for SMTP.
- `webhook.document`: a generic JSON document (schema ``synthetic.alert/v1``).
- `render`: the whole request one receiver gets (URL, headers, body; or the mail).
"""

from __future__ import annotations

from synthetic.alerts.payloads import alertmanager, email, pagerduty, slack, webhook
from synthetic.alerts.payloads._text import one_line, title, truncate
from synthetic.alerts.payloads.render import Rendered, render

__all__ = [
    "Rendered",
    "alertmanager",
    "email",
    "one_line",
    "pagerduty",
    "render",
    "slack",
    "title",
    "truncate",
    "webhook",
]
