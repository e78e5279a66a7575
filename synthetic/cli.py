"""The ``synthetic`` command: run, gate, list, sandbox, demo.

Each command builds pytest arguments and calls ``pytest.main`` in-process;
any argument it does not know is passed to pytest (``-n 2``, ``-k queue``,
``--alluredir DIR``), after ``--`` too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from synthetic.config import SANDBOX, SANDBOX_DEFAULT_PORT, SANDBOX_URL_VAR, load_config
from synthetic.errors import ConfigError
from synthetic.results import FAIL_ON_CHOICES, RunResult, Severity, fails
from synthetic.session import SPEC_KEY
from synthetic.spec import CheckSpec

# Checks are check_* functions in check_*.py files; test_* still works.
COLLECT_ARGS = (
    "-o",
    "python_files=check_*.py test_*.py *_test.py",
    "-o",
    "python_functions=check_* test_*",
)
UNKNOWN = Severity.UNKNOWN.nagios_code


class _RunCapture:
    """Receives the run's result through our own hook."""

    def __init__(self) -> None:
        self.run: RunResult | None = None

    def pytest_synthetic_run_finished(self, run: RunResult, config: pytest.Config) -> None:
        self.run = run


class _CatalogCapture:
    def __init__(self) -> None:
        self.specs: list[CheckSpec] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.specs = [item.stash[SPEC_KEY] for item in session.items if SPEC_KEY in item.stash]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", help="environment to check (default: SYNTHETIC_ENV or config)")
    parser.add_argument("--config", help="config file (default: SYNTHETIC_CONFIG or nearest)")
    parser.add_argument("--results-dir", help="where results.json goes (synthetic-results/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthetic",
        description="Synthetic monitoring on pytest. Unknown arguments go to pytest.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the checks; exit with the Nagios code of the worst result",
        description="Run the checks. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    )
    _common(run)

    gate = sub.add_parser(
        "gate",
        help="post-deploy gate: exit 1 when a check reaches --fail-on",
        description="Run the checks as a deploy gate: exit 0 to proceed, 1 to stop.",
    )
    _common(gate)
    gate.add_argument("--fail-on", choices=FAIL_ON_CHOICES, default="critical")

    lister = sub.add_parser("list", help="print the check catalogue", description="List checks.")
    _common(lister)
    lister.add_argument("--json", action="store_true", help="print JSON")

    sandbox = sub.add_parser(
        "sandbox",
        help="serve a simulated Customer Portal BFF on loopback",
        description="Serve the simulated BFF until Ctrl-C.",
    )
    sandbox.add_argument("--scenario", default="healthy")
    sandbox.add_argument("--port", type=int, default=SANDBOX_DEFAULT_PORT)
    sandbox.add_argument("--host", default="127.0.0.1", help="a loopback address")

    demo = sub.add_parser(
        "demo",
        help="start a sandbox on a free port, run the checks against it",
        description="Run the checks against an embedded sandbox and print the summary.",
    )
    demo.add_argument("--scenario", default="healthy")
    demo.add_argument("--config", help="config file (default: SYNTHETIC_CONFIG or nearest)")
    demo.add_argument("--results-dir", help="where results.json goes (synthetic-results/)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, passthrough = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    passthrough = [a for a in passthrough if a != "--"]
    try:
        if args.command == "sandbox":
            return _sandbox(args)
        if args.command == "demo":
            return _demo(args, passthrough)
        if args.command == "list":
            return _list(args, passthrough)
        return _run(args, passthrough, gate=args.command == "gate")
    except ConfigError as exc:
        print(f"synthetic: error: {exc}", file=sys.stderr)
        return UNKNOWN if args.command in ("run", "demo") else 1


def _pytest_args(args: argparse.Namespace, passthrough: list[str]) -> list[str]:
    """Our options as pytest options, plus the check paths unless some are given."""
    result = [*COLLECT_ARGS]
    for flag, value in (
        ("--env", getattr(args, "env", None)),
        ("--synthetic-config", args.config),
        ("--results-dir", args.results_dir),
    ):
        if value:
            result += [flag, value]
    if not any(_looks_like_path(a) for a in passthrough):
        config = load_config(
            path=args.config or os.environ.get("SYNTHETIC_CONFIG") or None,
            environment=getattr(args, "env", None) or os.environ.get("SYNTHETIC_ENV") or None,
        )
        paths = [str(p) for p in config.checks if p.exists()]
        if not paths:
            wanted = ", ".join(str(p) for p in config.checks)
            raise ConfigError(
                f"{config.source}: checks: no check directory found ({wanted}); "
                "pass a path or set `checks` in the config"
            )
        result += paths
    return result + passthrough


def _looks_like_path(arg: str) -> bool:
    return not arg.startswith("-") and ("::" in arg or arg.endswith(".py") or Path(arg).exists())


def _run(args: argparse.Namespace, passthrough: list[str], *, gate: bool) -> int:
    pytest_args = _pytest_args(args, passthrough)
    if gate:
        pytest_args += ["--fail-on", args.fail_on]
    capture = _RunCapture()
    code = pytest.main(pytest_args, plugins=[capture])
    return _exit_code(capture.run, int(code), gate=gate, fail_on=getattr(args, "fail_on", None))


def _exit_code(run: RunResult | None, pytest_code: int, *, gate: bool, fail_on: str | None) -> int:
    if run is None:
        why = {
            int(pytest.ExitCode.NO_TESTS_COLLECTED): "no checks were collected",
            int(pytest.ExitCode.USAGE_ERROR): "usage or configuration error",
            int(pytest.ExitCode.INTERRUPTED): "interrupted (collection error or Ctrl-C)",
        }.get(pytest_code, f"pytest exited with {pytest_code}")
        print(f"synthetic: no result: {why}", file=sys.stderr)
        return 1 if gate else UNKNOWN
    if gate:
        failed = fails(run.worst, fail_on or "critical") or pytest_code != 0
        verdict = "FAILED" if failed else "PASSED"
        print(f"synthetic gate: {verdict} (worst: {run.worst.value}, fail-on: {fail_on})")
        return 1 if failed else 0
    return run.worst.nagios_code


def _list(args: argparse.Namespace, passthrough: list[str]) -> int:
    capture = _CatalogCapture()
    pytest_args = [*_pytest_args(args, passthrough), "--collect-only", "-q"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = pytest.main(pytest_args, plugins=[capture])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        sys.stderr.write(out.getvalue())
        return 1
    catalogue = [spec.to_json() for spec in capture.specs]
    if args.json:
        json.dump(catalogue, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for entry in catalogue:
        thresholds = f"warning {entry['warning'] or '-'}, critical {entry['critical'] or '-'}"
        print(f"{entry['priority']}  {entry['metric']:<32} {thresholds}  [{entry['id']}]")
    print(f"{len(catalogue)} checks")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from synthetic.sandbox import serve

    try:
        serve(args.scenario, args.host, args.port)
    except (ValueError, OSError) as exc:
        print(f"synthetic sandbox: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo(args: argparse.Namespace, passthrough: list[str]) -> int:
    from synthetic.sandbox import Sandbox

    try:
        sandbox = Sandbox(args.scenario)
    except ValueError as exc:
        print(f"synthetic demo: error: {exc}", file=sys.stderr)
        return 2
    with sandbox:
        print(f"synthetic demo: sandbox '{args.scenario}' at {sandbox.url}")
        previous = os.environ.get(SANDBOX_URL_VAR)
        os.environ[SANDBOX_URL_VAR] = sandbox.url
        try:
            run_args: Any = argparse.Namespace(
                env=SANDBOX, config=args.config, results_dir=args.results_dir
            )
            return _run(run_args, passthrough, gate=False)
        finally:
            if previous is None:
                os.environ.pop(SANDBOX_URL_VAR, None)
            else:
                os.environ[SANDBOX_URL_VAR] = previous


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
