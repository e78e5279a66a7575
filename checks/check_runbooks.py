"""The guide's "Validate runbook links are current", as checks a scheduled run can include.

One check per runbook the catalogue names (``runbook.link{runbook="queue-management"}``),
fetched as ``synthetic report runbooks`` fetches it: GET, redirects within the
scheme (at most 5), a deadline. Skipped unless ``SYNTHETIC_CHECK_RUNBOOKS=1``:
an ordinary run does not fetch documentation. The config routes
``runbook.link`` to the info receiver: a stale link is maintenance, not a page.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synthetic import Config, fetch_links, runbook_names

ENABLE = "SYNTHETIC_CHECK_RUNBOOKS"
TIMEOUT_S = 10.0
SLOW_S = 3.0


@pytest.mark.metric("runbook.link", component="docs", priority="P4", runbook="incident-response")
@pytest.mark.warning("in ['moved', 'slow']")
@pytest.mark.critical("== 'broken'")
@pytest.mark.parametrize("runbook", runbook_names(Path(__file__).parent))
def check_runbook_link(runbook: str, synthetic_config: Config) -> str:
    """ok, moved (to another site or scheme), slow or broken."""
    if os.environ.get(ENABLE) != "1":
        pytest.skip(f"runbook links are checked when {ENABLE}=1")
    url = synthetic_config.runbooks.resolve(runbook) or runbook
    (result,) = fetch_links([url], concurrency=1, timeout_s=TIMEOUT_S, slow_s=SLOW_S)
    if result.verdict != "ok":
        print(f"{url}: {result.detail}")
    return result.verdict
