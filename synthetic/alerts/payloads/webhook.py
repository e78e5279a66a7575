"""A generic JSON document for webhooks: every field of the alert, JSON-safe.

Schema ``synthetic.alert/v1``: the `Alert` fields under their own names, plus
``schema`` and ``title``. The value goes through `synthetic.results.json_safe`
(non-finite floats, bytes, decimals become JSON types; a value over 64K
characters is cut and says so). Nothing else is cut: a receiver of this
document has no documented limits to respect.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from synthetic.alerts.model import Alert
from synthetic.alerts.payloads._text import title
from synthetic.results import json_safe

SCHEMA = "synthetic.alert/v1"


def document(alert: Alert) -> dict[str, Any]:
    """``alert`` as plain JSON data, with ``schema`` first."""
    doc: dict[str, Any] = {"schema": SCHEMA, "title": title(alert)}
    for field in dataclasses.fields(alert):
        doc[field.name] = getattr(alert, field.name)
    doc["labels"] = {str(k): str(v) for k, v in alert.labels.items()}
    doc["locations"] = {str(k): str(v) for k, v in alert.locations.items()}
    doc["value"] = json_safe(alert.value)
    return doc
