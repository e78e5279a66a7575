"""Running a file of the catalogue the way a user does, for the check tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

from synthetic.config import MOVED_TO_PARAMS, Environment, load_config

REPO = Path(__file__).resolve().parents[2]
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


def portal_environment(name: str = "sandbox") -> Environment:
    """Environment ``name`` of the Customer Portal's config (this repository's
    pyproject.toml), none of its variables set: the guide's names and dependencies."""
    return load_config(path=REPO / "pyproject.toml", environment=name, environ={}).environment


def toml_value(value: Any) -> str:
    """Strings, numbers, lists and flat tables, as TOML spells them (keys quoted:
    ``{ "/health" = "data" }``)."""
    if isinstance(value, dict):
        pairs = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    return json.dumps(value)


def environment_toml(name: str, settings: Mapping[str, Any]) -> list[str]:
    """``[environments.<name>]`` with ``settings`` as TOML lines; a value of None is
    left out. The portal catalogue's own settings (`MOVED_TO_PARAMS`, and those
    of a ``params`` entry) go to its ``[environments.<name>.params]`` table."""
    values = dict(settings)
    params = dict(values.pop("params", None) or {})
    params.update({k: values.pop(k) for k in list(values) if k in MOVED_TO_PARAMS})
    lines = [f"[environments.{name}]"]
    lines += [f"{key} = {toml_value(v)}" for key, v in values.items() if v is not None]
    lines += [f"[environments.{name}.params]"]
    lines += [f"{key} = {toml_value(v)}" for key, v in params.items() if v is not None]
    return lines


def write_config(pytester: pytest.Pytester, redis_url: str | None, **keys: Any) -> Path:
    """``synthetic.toml`` with one environment, ``test``; a key set to None is left out.
    The portal catalogue's own settings (`MOVED_TO_PARAMS`) go to its ``params`` table."""
    lines = environment_toml("test", {"redis_url": redis_url, "timeout_s": 3, **keys})
    path = pytester.path / "synthetic.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_checks(
    pytester: pytest.Pytester, config: Path, checks: Path = CHECKS / "check_cache.py", *args: str
) -> dict[str, dict[str, Any]]:
    """Run a check file as a user does; results.json's checks by test name (with params)."""
    return run_check_file(pytester, checks, config, *args)[0]


def client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
