"""`synthetic run` and `gate` append to the history when the config names one.

Called by the controller after results.json and the verdict, so a slow or
absent store delays neither; a failure is one note in the summary. Rounds of
`synthetic serve` are written by the runner's own writer instead (one writer
per store): its round process sets `SERVED_KEY`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synthetic.config import Config
from synthetic.errors import MissingExtra
from synthetic.history import HistoryError, open_history
from synthetic.history.model import rows_of
from synthetic.results import RunResult

SERVED_KEY = pytest.StashKey[bool]()  # set in a round of `synthetic serve`


def append_run(run: RunResult, config: Config, results_dir: Path) -> str | None:
    """Append ``run`` to the configured history; a one-line note when it could not."""
    try:
        store = open_history(
            config.history,
            results_dir=results_dir,
            describe=config.masker.text(config.history or ""),
        )
    except MissingExtra as exc:
        return str(exc)
    try:
        store.append(*rows_of(run))
    except HistoryError as exc:
        return config.masker.text(str(exc))
    finally:
        store.close()
    return None
