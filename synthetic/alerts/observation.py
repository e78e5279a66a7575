"""An observation: one check's result (or a verdict of several locations) as incidents see it.

Pure data, apart from the decisions (`synthetic.alerts.decide`) and the quorum
(`synthetic.alerts.quorum`) that both make them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthetic.alerts.model import RouteSeverity


@dataclass(frozen=True)
class Observation:
    """A check's result as the incident logic sees it."""

    key: str
    state: str  # breach | ok | none
    severity: RouteSeverity | None  # of a breach
    sustain_s: float
    facts: dict[str, Any]  # what an alert about it says
