"""The public surface: `synthetic/__init__.py` exports what check and hook
authors use, `__all__` is exactly that, the checks import nothing else, and
the pure modules stay pure (each imported in a fresh interpreter)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import synthetic

ROOT = Path(__file__).resolve().parents[1]


def _type_checking_names() -> set[str]:
    """The names `synthetic/__init__.py` imports for type checkers (``X as X``)."""
    tree = ast.parse((ROOT / "synthetic" / "__init__.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("synthetic"):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def test_all_lists_exactly_the_exported_names() -> None:
    exported = _type_checking_names()
    assert set(synthetic.__all__) == exported
    assert len(synthetic.__all__) == len(set(synthetic.__all__))
    for name in synthetic.__all__:
        value = getattr(synthetic, name)
        assert value is not None, name
        if name != "__version__":
            # The object is the one of the module it lives in, not a copy.
            home = synthetic._HOMES[name]
            assert getattr(__import__(home, fromlist=[name]), name) is value


def test_what_check_and_hook_authors_use_is_exported() -> None:
    wanted = {
        # a check's value, its errors and the clients and readers it measures with
        "Measurement", "MeasurementError", "Unreachable", "NotConfigured", "NotJson",
        "BFFClient", "Snapshot", "HealthBody", "read_snapshot", "dig", "dig_number",
        "Samples", "increase_since_last_run", "rate_since_last_run",
        "LogReadings", "NoLogData", "QueryFailed", "LogFileError",
        "gauge_value", "series_value", "select_series", "parse_selector",
        "find_queues", "job_counts", "selected_environment", "Environment",
        # a hook's arguments and answers
        "CheckResult", "RunResult", "Severity", "Alert", "Receiver", "DeliveryResult",
        "Rendered", "SyntheticError",
    }  # fmt: skip
    assert wanted <= set(synthetic.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = synthetic.nope


def _imports_of(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("path", sorted((ROOT / "checks").glob("*.py")), ids=lambda p: p.name)
def test_the_checks_import_only_the_public_package(path: Path) -> None:
    internal = [m for m in _imports_of(path) if m.startswith("synthetic.")]
    assert internal == []


def _fresh_import(module: str, *, forbidden: tuple[str, ...]) -> list[str]:
    code = f"import sys, {module}\nprint(','.join(m for m in {forbidden!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return [m for m in done.stdout.strip().split(",") if m]


def test_decide_is_pure() -> None:
    # The decisions are a function of results, state and settings: no test
    # framework, no network client, no validation library, no retry library.
    heavy = ("pytest", "httpx", "pydantic", "tenacity", "redis")
    assert _fresh_import("synthetic.alerts.decide", forbidden=heavy) == []


def test_importing_the_package_loads_nothing_heavy() -> None:
    heavy = ("httpx", "pydantic", "polars", "boto3", "psycopg", "redis", "allure_commons")
    assert _fresh_import("synthetic", forbidden=heavy) == []
