"""Running a file of the catalogue the way a user does, for the check tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKS = REPO / "checks"


def run_check_file(
    pytester: pytest.Pytester, checks: Path, config: Path, *args: str
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run ``checks`` with environment ``test`` of ``config``.

    Returns results.json's checks by test name (with parameters), and the
    whole document. results.json is removed after reading, so a later run
    that writes none cannot be mistaken for this one.
    """
    out = pytester.path / "out"
    pytester.runpytest(
        str(checks), "--env", "test", "--synthetic-config", str(config),
        "--results-dir", str(out), "-p", "no:cacheprovider", *args,
    )  # fmt: skip
    document: dict[str, Any] = json.loads((out / "results.json").read_text())
    (out / "results.json").unlink()
    return {check["id"].split("::", 1)[1]: check for check in document["checks"]}, document
