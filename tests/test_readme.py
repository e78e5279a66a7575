"""The README's examples, as a newcomer would paste them: every TOML block loads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from synthetic.config import load_config

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _value(variable: str) -> str:
    """A value of the form a variable's name asks for."""
    for part, value in (("REDIS", "redis://127.0.0.1:6379/0"),
                        ("POSTGRES", "postgresql://monitor@127.0.0.1/portal"),
                        ("URL", "https://example.com")):  # fmt: skip
        if part in variable:
            return value
    return "value"


def test_the_readme_has_config_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0][:40] for b in BLOCKS])
def test_every_toml_block_is_a_config_that_loads(tmp_path: Path, block: str) -> None:
    data = tomllib.loads(block)
    name = "pyproject.toml" if "tool" in data else "synthetic.toml"
    (tmp_path / name).write_text(block, encoding="utf-8")
    environ = {variable: _value(variable) for variable in _VARIABLE.findall(block)}
    section = data.get("tool", {}).get("synthetic", data)
    environments = sorted(section.get("environments", {})) or [None]
    for environment in environments:
        load_config(path=tmp_path / name, environment=environment, environ=environ)
