"""Benchmark: what starting costs.

    .venv/bin/python bench/light_start.py [--rounds 5]

1. ``synthetic run`` of the Customer Portal's catalogue against the sandbox,
   HTTP checks only (an environment with a ``base_url`` and nothing else: no
   Redis, PostgreSQL or logs), against a bare httpx script making the same
   requests (recorded by the sandbox during the first run) in one process.
   CPU (user + system) of the child process, median of ``--rounds``.
   The same run in one process (``-p no:xdist``: no worker for the guard to
   kill), and what no pytest-based run can avoid: the imports every such run
   needs (pytest, httpx, the config's models) and a bare pytest session of 48
   empty tests.
2. A plain ``pytest`` run of an unrelated project (two trivial tests) in this
   environment, with the plugin and with ``-p no:synthetic``: what the plugin
   costs a project that does not use it.

Prints Markdown; the numbers go to ``bench/README.md``. Measurements, not
assertions: what the plugin loads is asserted by tests/test_light_start.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from synthetic.sandbox.server import Sandbox  # noqa: E402

BIN = Path(sys.executable).parent
BARE = """
import json, sys, httpx
requests = json.loads(sys.argv[1])
with httpx.Client(base_url=sys.argv[2], timeout=5) as client:
    for method, path in requests:
        client.request(method, path)
"""


def child_cpu(command: list[str], **kwargs: object) -> float:
    """CPU seconds (user + system) the child process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=False, capture_output=True, **kwargs)  # type: ignore[call-overload]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


FLOOR_IMPORTS = "import gc; gc.disable(); import pytest, httpx, synthetic.config"


def run_against_sandbox(rounds: int) -> tuple[float, float, float, int]:
    with Sandbox("healthy") as sandbox, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "synthetic.toml"
        config.write_text(
            f'checks = ["{REPO / "checks"}"]\n[environments.bench]\nbase_url = "{sandbox.url}"\n'
            # The portal's dependencies (as its config has them): their log checks
            # are collected, and skip without log files.
            "[logs.dependencies]\nwhmcs = {}\nsalesforce = {}\nfreebit = {}\n"
        )
        command = [
            str(BIN / "synthetic"), "run", "--config", str(config), "--env", "bench",
            "--alerts", "off", "--results-dir", str(Path(tmp) / "results"),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
        child_cpu(command, env=env, cwd=tmp)  # warm the caches (pyc, page cache)
        sandbox.clear_requests()
        runs = []
        for number in range(rounds):
            runs.append(child_cpu(command, env=env, cwd=tmp))
            if number == 0:
                made = [(r.method, r.path) for r in sandbox.requests]
        in_process = [
            child_cpu([*command, "-p", "no:xdist"], env=env, cwd=tmp) for _ in range(rounds)
        ]
        bare = [
            child_cpu([sys.executable, "-c", BARE, json.dumps(made), sandbox.url])
            for _ in range(rounds)
        ]
    return (
        statistics.median(runs),
        statistics.median(in_process),
        statistics.median(bare),
        len(made),
    )


def floor(rounds: int) -> tuple[float, float]:
    """The imports any pytest-based run of these checks needs, and a bare pytest
    session of 48 empty tests (its own imports included)."""
    imports = [child_cpu([sys.executable, "-c", FLOOR_IMPORTS]) for _ in range(rounds)]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_empty.py").write_text(
            "".join(f"def test_{n}():\n    pass\n" for n in range(48))
        )
        command = [
            str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "-p", "no:synthetic",
            "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:allure_pytest",
        ]  # fmt: skip
        child_cpu(command, cwd=tmp)
        session = [child_cpu(command, cwd=tmp) for _ in range(rounds)]
    return statistics.median(imports), statistics.median(session)


def unrelated_pytest(rounds: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_plain.py").write_text(
            "def test_a():\n    assert 1\n\ndef test_b():\n    pass\n"
        )
        base = [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
        child_cpu(base, cwd=tmp, env=env)
        with_plugin = [child_cpu(base, cwd=tmp, env=env) for _ in range(rounds)]
        without = [
            child_cpu([*base, "-p", "no:synthetic"], cwd=tmp, env=env) for _ in range(rounds)
        ]
    return statistics.median(with_plugin), statistics.median(without)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run, in_process, bare, requests = run_against_sandbox(args.rounds)
    print(f"| `synthetic run`, HTTP checks, {requests} requests | {run:.2f} s CPU |")
    print(f"| bare httpx script, same requests | {bare:.2f} s CPU |")
    print(f"| ratio | {run / bare:.1f}x |")
    shown = f"{in_process:.2f} s ({in_process / bare:.1f}x)"
    print(f"| the same run in one process (`-p no:xdist`) | {shown} |")
    imports, session = floor(args.rounds)
    print(
        f"| imports: pytest, httpx, the config's models | {imports:.2f} s ({imports / bare:.1f}x) |"
    )
    print(f"| a bare pytest session, 48 empty tests | {session:.2f} s ({session / bare:.1f}x) |")
    with_plugin, without = unrelated_pytest(args.rounds * 2)
    print(f"| unrelated pytest run, plugin loaded | {with_plugin * 1000:.0f} ms CPU |")
    print(f"| unrelated pytest run, `-p no:synthetic` | {without * 1000:.0f} ms CPU |")
    print(f"| the plugin's cost | {(with_plugin - without) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
