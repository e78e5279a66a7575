"""The ``synthetic`` command: run, gate, watch, serve, list, sandbox, demo, alerts, silence,
generate, report.

Each command builds pytest arguments and runs the pytest session: ``run``,
``gate`` and ``demo`` in a child process whose verdict decides their exit
status (`synthetic.launcher`), ``list`` in-process, ``watch`` each round as a
``synthetic run`` child process, ``serve`` each round in a process forked from a
warm one (`synthetic.serve`); any argument it does not know is passed to
pytest (``-n 2``, ``-k queue``, ``--alluredir DIR``), after ``--`` too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from synthetic import launcher
from synthetic.catalogue import find_catalogue
from synthetic.config import (
    SANDBOX,
    SANDBOX_DEFAULT_PORT,
    SANDBOX_URL_VAR,
    Config,
    load_config,
)
from synthetic.errors import CatalogueError, ConfigError
from synthetic.options import ALERT_MODES, BY_DEST
from synthetic.outcome import one_line
from synthetic.results import FAIL_ON_CHOICES, RunResult, Severity
from synthetic.run_state import SPEC_KEY, run_state
from synthetic.spec import CheckSpec
from synthetic.watch import REPORT_OPTION

# Checks are check_* functions in check_*.py files; test_* still works.
COLLECT_ARGS = (
    "-o",
    "python_files=check_*.py test_*.py *_test.py",
    "-o",
    "python_functions=check_* test_*",
    # pytest plugins a check never uses, not loaded by the command: each would
    # cost its import in the controller and again in the worker (a light start,
    # bench/light_start.py). Harmless when they are not installed.
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:anyio",
)
UNKNOWN = Severity.UNKNOWN.nagios_code
# The checks run on at least one worker, never in the controller; a worker a
# check took down is replaced, for as long as the run's deadline allows.
WORKER_ARGS = ["--numprocesses=1", "--max-worker-restart=1000"]
# The demo's services, named in the sandbox environment of the repository's config.
SANDBOX_REDIS_VAR = "SYNTHETIC_SANDBOX_REDIS_URL"
SANDBOX_POSTGRES_VAR = "SYNTHETIC_SANDBOX_POSTGRES_DSN"
SANDBOX_LOG_VAR = "SYNTHETIC_SANDBOX_LOG_FILE"


class _CatalogCapture:
    def __init__(self) -> None:
        self.specs: list[CheckSpec] = []
        self.config: Config | None = None  # the loaded config the specs were built with

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.specs = [item.stash[SPEC_KEY] for item in session.items if SPEC_KEY in item.stash]
        with contextlib.suppress(pytest.UsageError):
            self.config = run_state(session.config).config


def _common(parser: argparse.ArgumentParser) -> None:
    """--env, --config, --results-dir, with the help text of `synthetic.options`."""
    for dest, flag in (
        ("synthetic_env", "--env"),
        ("synthetic_config", "--config"),
        ("synthetic_results_dir", "--results-dir"),
    ):
        parser.add_argument(flag, dest=flag[2:].replace("-", "_"), help=BY_DEST[dest].described)


def _location_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--location", help=BY_DEST["synthetic_location"].described, metavar="NAME")


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: "--co" is pytest's --collect-only, not our --config.
    parser = argparse.ArgumentParser(
        prog="synthetic",
        description="Synthetic monitoring on pytest. Unknown arguments go to pytest.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        allow_abbrev=False,
        help="run the checks; exit with the Nagios code of the worst result",
        description="Run the checks. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    )
    _common(run)
    _alerts_option(run, "default: SYNTHETIC_ALERTS, ini synthetic_alerts, dry-run")
    _location_option(run)
    run.add_argument(
        "--format",
        choices=("text", "nagios"),
        default="text",
        help="nagios: print only a plugin status line with performance data (Nagios, Icinga, "
        "Sensu), exit 0/1/2/3",
    )
    run.add_argument(REPORT_OPTION, help=argparse.SUPPRESS)  # for `watch`: where results went

    gate = sub.add_parser(
        "gate",
        allow_abbrev=False,
        help="post-deploy gate: exit 1 when a check reaches --fail-on",
        description="Run the checks as a deploy gate: exit 0 to proceed, 1 to stop.",
    )
    _common(gate)
    _alerts_option(gate, "default: off: a gate decides a deploy, it does not page")
    _location_option(gate)
    gate.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        help="lowest severity that stops the deploy (default: SYNTHETIC_FAIL_ON, ini, critical)",
    )
    gate.add_argument(
        "--settle",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="re-run the checks that fail the gate until they pass or this is spent, for a "
        "service still warming up (2m, 90s; default 0: decide on the first run)",
    )
    gate.add_argument(
        "--settle-every",
        type=_duration,
        default=10.0,
        metavar="DURATION",
        help="time between the starts of two attempts while settling (default 10s)",
    )

    watcher = sub.add_parser(
        "watch",
        allow_abbrev=False,
        help="run the checks in rounds, each a fresh `synthetic run` process, until stopped",
        description="Run the checks every --every until Ctrl-C or SIGTERM (or --rounds); "
        "one line per round; exit with the last finished round's code.",
    )
    _common(watcher)
    _alerts_option(watcher, "default: as run: SYNTHETIC_ALERTS, ini synthetic_alerts, dry-run")
    _location_option(watcher)
    watcher.add_argument(
        "--every",
        type=_duration,
        default=30.0,
        metavar="DURATION",
        help="from the start of one round to the start of the next (default 30s); a round "
        "that takes longer is followed at once, never overlapped",
    )
    watcher.add_argument(
        "--rounds", type=_positive_int, help="stop after this many rounds (default: never)"
    )

    server = sub.add_parser(
        "serve",
        allow_abbrev=False,
        help="run the checks in rounds and serve a status page, /metrics and the history",
        description="Run the checks every --every until Ctrl-C or SIGTERM (or --rounds), "
        "serving a status page, Prometheus /metrics, /api/results and /api/history.",
    )
    _common(server)
    _alerts_option(server, "default: as run: SYNTHETIC_ALERTS, ini synthetic_alerts, dry-run")
    _location_option(server)
    server.add_argument(
        "--every",
        type=_duration,
        metavar="DURATION",
        help="from the start of one round to the start of the next (default: [serve] every, "
        "30s); a round that takes longer is followed at once, never overlapped",
    )
    server.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to serve (default: [serve] listen, 127.0.0.1:9464)",
    )
    server.add_argument(
        "--rounds", type=_positive_int, help="stop after this many rounds (default: never)"
    )

    lister = sub.add_parser(
        "list", help="print the check catalogue", description="List checks.", allow_abbrev=False
    )
    _common(lister)
    lister.add_argument("--json", action="store_true", help="print JSON")

    sandbox = sub.add_parser(
        "sandbox",
        allow_abbrev=False,
        help="serve a simulated Customer Portal BFF on loopback",
        description="Serve the simulated BFF until Ctrl-C.",
    )
    sandbox.add_argument("--scenario", default="healthy")
    sandbox.add_argument("--port", type=int, default=SANDBOX_DEFAULT_PORT)
    sandbox.add_argument("--host", default="127.0.0.1", help="a loopback address")

    demo = sub.add_parser(
        "demo",
        allow_abbrev=False,
        help="start a sandbox on a free port, run the checks against it",
        description="Run the checks against an embedded sandbox and print the summary.",
    )
    demo.add_argument("--scenario", default="healthy")
    demo.add_argument(
        "--no-services",
        action="store_true",
        help="do not start Redis and PostgreSQL (their checks then skip)",
    )
    demo.add_argument("--config", help="config file (default: SYNTHETIC_CONFIG or nearest)")
    demo.add_argument("--results-dir", help="where results.json goes (synthetic-results/)")
    _alerts_option(demo, "default: dry-run")

    from synthetic.alerts import commands

    commands.add_parsers(sub, _common)
    from synthetic.generate import command as generate

    generate.add_parser(sub, _common)
    from synthetic.reports import command as report

    report.add_parser(sub, _common)
    return parser


def _duration(text: str) -> float:
    from synthetic.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1 (got {text!r})")
    return value


def _alerts_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--alerts",
        choices=ALERT_MODES,
        help=f"off, dry-run (payloads written to <results-dir>/alerts/) or send ({default})",
    )


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
        if args.command in ("alerts", "silence"):
            from synthetic.alerts import commands

            if passthrough:
                parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
            return commands.run(args)
        if args.command == "watch":
            return _watch(args, passthrough)
        if args.command == "serve":
            from synthetic.serve.command import serve

            return serve(args, _pytest_args(args, passthrough))
        if args.command == "generate":
            from synthetic.generate import command as generate

            return generate.run(args, passthrough)
        if args.command == "report":
            from synthetic.reports import command as report

            return report.run(args, passthrough)
        if args.command == "gate" and args.settle > 0:
            return _settling_gate(args, passthrough)
        return _run(args, passthrough, gate=args.command == "gate")
    except BrokenPipeError:
        # `synthetic list --json | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _pytest_args(
    args: argparse.Namespace, passthrough: list[str], *, workers: bool = False
) -> list[str]:
    """Our options as pytest options, anchored to the config file (`synthetic.catalogue`).

    The config's `checks` come first as paths; when the command line names
    paths too, the plugin keeps only those: it tells them apart by pytest's
    own parsing (``--synthetic-default-checks``). With ``workers`` the checks
    run on at least one xdist worker, never in the controller (`synthetic.guard`):
    a ``-n`` of the command line comes later and wins."""
    result = [*COLLECT_ARGS, "--synthetic-default-checks"]
    catalogue = find_catalogue(args.config, cwd=Path.cwd())
    config = args.config
    if catalogue is not None:
        result += catalogue.options()
        config = None  # named by the catalogue's options, resolved
    for flag, value in (
        ("--synthetic-config", config),
        ("--results-dir", args.results_dir),
        ("--fail-on", getattr(args, "fail_on", None)),
        ("--alerts", _alerts_mode(args)),
        ("--location", getattr(args, "location", None)),
    ):
        if value:
            # "--flag=value": pytest would take a lone value that is an existing
            # directory (--results-dir /tmp/x) for a path when finding its rootdir.
            result.append(f"{flag}={value}")
    if catalogue is not None:
        result += catalogue.paths()
    if workers and not any(_no_workers(arg) for arg in passthrough):
        result += WORKER_ARGS
    if catalogue is not None and not _allure_asked(passthrough, catalogue.settings):
        result += ["-p", "no:allure_pytest"]  # its import and hooks, in every process
    result += passthrough
    if getattr(args, "env", None):
        result += ["--env", args.env]  # last, so it wins over one passed through
    return result


def _allure_asked(passthrough: list[str], settings: Path | None) -> bool:
    """Whether Allure results may be asked for: ``--alluredir`` on the command
    line, in ``PYTEST_ADDOPTS`` or anywhere in pytest's settings file (read
    as text: when in doubt, allure-pytest is loaded)."""
    given = " ".join([*passthrough, os.environ.get("PYTEST_ADDOPTS", "")])
    if "--alluredir" in given:
        return True
    try:
        return settings is not None and "alluredir" in settings.read_text(errors="replace")
    except OSError:
        return True


def _no_workers(arg: str) -> bool:
    """An argument that rules workers out: xdist disabled, or a debugger (xdist refuses)."""
    return arg in ("--pdb", "--trace") or arg.endswith("no:xdist")


def _alerts_mode(args: argparse.Namespace) -> str | None:
    """The gate sends nothing and the demo only writes, unless told otherwise
    on their own command line (SYNTHETIC_ALERTS=send in a CI job's environment
    is meant for its scheduled runs, not for its gate)."""
    chosen: str | None = getattr(args, "alerts", None)
    if chosen is None and args.command == "gate":
        return "off"
    if chosen is None and args.command == "demo":
        return "dry-run"
    return chosen


def _run(args: argparse.Namespace, passthrough: list[str], *, gate: bool) -> int:
    report = getattr(args, "report_results_path", None)
    pytest_args = _pytest_args(args, passthrough, workers=True)
    if getattr(args, "format", "text") == "nagios":
        session = launcher.run([*pytest_args, "-q"], quiet=True)
        code = _nagios(session)
    else:
        session = launcher.run(pytest_args)
        code = _exit_code(session, session.run, gate=gate)
    if report:
        Path(report).write_text(str(session.results_path or ""), encoding="utf-8")
    return code


def _settling_gate(args: argparse.Namespace, passthrough: list[str]) -> int:
    """The gate with ``--settle``: failing checks get until the settle time is spent.

    results.json then holds the decision: the first run, each re-run check
    replaced by its last result.
    """
    from synthetic.settle import describe, settle
    from synthetic.units import format_duration

    first = launcher.run(_pytest_args(args, passthrough, workers=True))
    # An incomplete run is not waited for: a crash or a bad threshold does not settle.
    if first.run is None or not first.run.complete or not first.run.fails(first.fail_on):
        return _exit_code(first, first.run, gate=True)

    def rerun(ids: Sequence[str]) -> RunResult | None:
        # Ids are relative to the rootdir, which need not be the working directory.
        # (os.path.join: a Path would fold the slashes of a parameter like [/health].)
        paths = [os.path.join(first.rootdir or "", i) for i in ids]
        return launcher.run(_pytest_args(args, [*passthrough, *paths], workers=True)).run

    def say(line: str) -> None:
        print(f"synthetic gate: {line}", flush=True)

    try:
        outcome = settle(
            first.run,
            first.fail_on,
            rerun,
            settle_s=args.settle,
            every_s=args.settle_every,
            say=say,
        )
    except KeyboardInterrupt:
        print("synthetic gate: FAILED (interrupted while settling)", file=sys.stderr)
        return 1
    run = outcome.run
    if outcome.settled:
        say(f"settled after {format_duration(outcome.waited_s)}")
    else:
        still = run.failing(first.fail_on)
        why = describe(still) if still else "the last attempt is incomplete"
        say(f"not settled after {format_duration(outcome.waited_s)}: {why}")
    if first.results_path is not None:
        _write_results(first.results_path, run)
    return _exit_code(first, run, gate=True)


def _write_results(path: Path, run: RunResult) -> None:
    try:
        run.write(path)
    except OSError as exc:
        print(f"synthetic gate: cannot write {path}: {exc.strerror}", file=sys.stderr)


def _watch(args: argparse.Namespace, passthrough: list[str]) -> int:
    from synthetic.watch import watch

    run_args: list[str] = []
    for flag in ("env", "config", "results_dir", "alerts", "location"):
        value = getattr(args, flag)
        if value:
            run_args.append(f"--{flag.replace('_', '-')}={value}")
    run_args += passthrough  # as given: run's own options (--format) and pytest's

    def say(line: str) -> None:
        print(f"synthetic watch: {line}", flush=True)

    return watch(run_args, every_s=args.every, rounds=args.rounds, say=say)


def _nagios(session: launcher.Session) -> int:
    """A Nagios plugin: one line on stdout, the exit code of the worst check."""
    from synthetic.outputs.formats import nagios

    if session.run is None:
        why = one_line(session.last_line) if session.last_line else ""
        why = why or launcher.no_result_reason(session)
        print(f"SYNTHETIC UNKNOWN - no result: {why}".replace("|", "/"))
        return UNKNOWN
    print(nagios(session.run))
    return session.run.worst.nagios_code


def _exit_code(session: launcher.Session, run: RunResult | None, *, gate: bool) -> int:
    """The command's exit status, from the verdict (``run``, None when there is none)."""
    if run is None:
        print(f"synthetic: no result: {launcher.no_result_reason(session)}", file=sys.stderr)
        return 1 if gate else UNKNOWN
    if not run.complete:
        print(
            f"synthetic: incomplete run ({len(run.errors)} error(s)"
            f"{', interrupted' if run.interrupted else ''}): counted as UNKNOWN",
            file=sys.stderr,
        )
    if gate:
        failed = run.fails(session.fail_on)
        verdict = "FAILED" if failed else "PASSED"
        print(f"synthetic gate: {verdict} (worst: {run.worst.value}, fail-on: {session.fail_on})")
        return 1 if failed else 0
    return run.worst.nagios_code


def collect(
    args: argparse.Namespace, passthrough: list[str]
) -> tuple[list[CheckSpec], Config | None]:
    """The check catalogue and its config, as the checks would run with them
    (the environment's overrides applied); `CatalogueError` with pytest's
    output when collection fails."""
    capture = _CatalogCapture()
    pytest_args = [*_pytest_args(args, passthrough), "--collect-only", "-q"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = pytest.main(pytest_args, plugins=[capture])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise CatalogueError(out.getvalue())
    return capture.specs, capture.config


def _list(args: argparse.Namespace, passthrough: list[str]) -> int:
    try:
        specs, _ = collect(args, passthrough)
    except CatalogueError as exc:
        sys.stderr.write(str(exc))
        return 1
    catalogue = [spec.to_json() for spec in specs]
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
    with contextlib.ExitStack() as stack:
        stack.enter_context(sandbox)
        print(f"synthetic demo: sandbox '{args.scenario}' at {sandbox.url}")
        variables = {SANDBOX_URL_VAR: sandbox.url, SANDBOX_LOG_VAR: _sandbox_log(args)}
        if not args.no_services:
            variables.update(_start_services(stack, args.config))
        stack.enter_context(_environ(variables))
        run_args = argparse.Namespace(
            command="demo",
            env=SANDBOX,
            config=args.config,
            results_dir=args.results_dir,
            alerts=args.alerts,
        )
        return _run(run_args, passthrough, gate=False)


def _sandbox_log(args: argparse.Namespace) -> str:
    """The sandbox portal's Pino log, extended with the scenario's traffic since its
    last line (kept in the results directory, so demo runs read it incrementally)."""
    from synthetic.sandbox import portal_logs

    results = args.results_dir or os.environ.get("SYNTHETIC_RESULTS_DIR") or "synthetic-results"
    log = (Path(results) / "sandbox" / "combined.log").resolve()
    written = portal_logs.extend(log, args.scenario, int(time.time() * 1000))
    print(f"synthetic demo: {written} lines of '{args.scenario}' traffic appended to {log}")
    return str(log)


def _start_services(stack: contextlib.ExitStack, config_path: str | None) -> dict[str, str]:
    """Redis and PostgreSQL on loopback, seeded, where their binaries are installed.

    Each is optional: one that is missing or fails to start is reported in
    one line, and its checks skip with "... is not configured".
    """
    from synthetic.sandbox import postgres_server, redis_server

    try:
        # The portal catalogue's settings (its params table): the demo seeds its queues.
        params = load_config(path=config_path, environment=SANDBOX).environment.params
        listed = params.get("bullmq_queues", ())
        queues = tuple(str(q) for q in listed) if isinstance(listed, list | tuple) else ()
        prefix = str(params.get("bullmq_prefix", "bull"))
    except ConfigError:
        queues, prefix = (), "bull"
    variables: dict[str, str] = {}
    if redis_server.find_redis_server() is None:
        print("synthetic demo: redis-server is not installed: the Redis and BullMQ checks skip")
    else:
        try:
            redis = stack.enter_context(
                redis_server.RedisServer(
                    maxmemory="64mb", maxmemory_policy="noeviction"
                )  # BullMQ needs it
            )
            redis_server.seed_bullmq(redis.url, prefix, queues)
            variables[SANDBOX_REDIS_VAR] = redis.url
            print(f"synthetic demo: Redis at {redis.url} (BullMQ queues {', '.join(queues)})")
        except Exception as exc:  # any failure here must only cost the Redis checks
            print(f"synthetic demo: Redis did not start ({one_line(str(exc))}): its checks skip")
    if postgres_server.find_postgres_bin() is None:
        print("synthetic demo: PostgreSQL is not installed: the database checks skip")
    else:
        try:
            database = stack.enter_context(postgres_server.PostgresServer(max_connections=50))
            postgres_server.seed_portal(database.admin_dsn)
            variables[SANDBOX_POSTGRES_VAR] = database.monitor_dsn
            print(f"synthetic demo: PostgreSQL on 127.0.0.1:{database.port} (tables seeded)")
        except Exception as exc:  # any failure here must only cost the database checks
            print(
                f"synthetic demo: PostgreSQL did not start ({one_line(str(exc))}): its checks skip"
            )
    return variables


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, restoring what was there."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
