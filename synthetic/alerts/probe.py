"""A location's own health: can this runner reach anything that is not a target?

A check that cannot reach the portal from one place may mean the portal is
down, or that this runner's network is. The probe asks URLs that do not
depend on the targets (``[alerts] location_probe``): any HTTP answer, whatever
its status, proves the route; none answering means the runner is cut off,
and its results must not count in a quorum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from synthetic.redact import Masker
from synthetic.text import printable

PROBE_TIMEOUT_S = 5.0  # per URL: connect, send, first answer


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str  # what was found, one line, masked


def probe(urls: Sequence[str], *, masker: Masker, timeout_s: float = PROBE_TIMEOUT_S) -> Health:
    """Healthy when one of ``urls`` answers at all; no URLs: healthy, nothing asked."""
    if not urls:
        return Health(True, "")
    failures = []
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for url in urls:
            shown = masker.text(url)
            try:
                response = client.get(url, headers={"Accept-Encoding": "identity"})
            except httpx.HTTPError as exc:
                why = printable(masker.text(str(exc)), 200) or type(exc).__name__
                failures.append(f"{shown}: {why}")
                continue
            return Health(True, f"{shown} answered HTTP {response.status_code}")
    return Health(False, "; ".join(failures))
