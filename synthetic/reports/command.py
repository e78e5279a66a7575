"""``synthetic report KIND --env NAME [--since 90d] [--format ...] [--out FILE]``.

Collects the catalogue as ``synthetic list`` does (the environment's
thresholds, runbooks and sustains in force), reads the history and the alert
store of the environment, computes the report and writes it, masked. Exit 0,
or 1 when ``runbooks`` finds a broken link; 2 with one line on bad input or a
store that cannot be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthetic.reports import FORMATS, KINDS
from synthetic.reports.document import Report

DEFAULT_SINCE = {"fatigue": "30d", "thresholds": "90d", "uptime": "90d", "runbooks": "0s"}


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    from synthetic.cli import _duration, _positive_int

    parser = sub.add_parser(
        "report",
        allow_abbrev=False,
        help="alert fatigue, threshold review, uptime and error budget, runbook links",
        description="fatigue: alerts per check and receiver, ranked by noise, with suggestions; "
        "thresholds: values against warning and critical levels; uptime: availability, "
        "incidents, error budget; runbooks: every runbook URL fetched (exit 1 when one is broken).",
    )
    common(parser)
    parser.add_argument("kind", choices=KINDS, metavar="KIND", help=", ".join(KINDS))
    parser.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="the period, back from now (default: fatigue 30d, thresholds and uptime 90d)",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="default text")
    parser.add_argument("--out", metavar="FILE", help="write here instead of to stdout")
    parser.add_argument("--location", help="only the rounds of this location")
    parser.add_argument(
        "--timezone", default="UTC", help="fatigue: working hours' timezone (default UTC)"
    )
    parser.add_argument(
        "--working-hours",
        default="9-18",
        metavar="START-END",
        help="fatigue: Monday to Friday, from START to END o'clock (default 9-18)",
    )
    parser.add_argument(
        "--objective",
        type=float,
        default=99.9,
        metavar="PERCENT",
        help="uptime: the availability objective, in percent (default 99.9)",
    )
    parser.add_argument(
        "--concurrency", type=_positive_int, default=8, help="runbooks: links at a time (8)"
    )
    parser.add_argument(
        "--timeout",
        type=_duration,
        default=10.0,
        metavar="DURATION",
        help="runbooks: per link (10s)",
    )
    parser.add_argument(
        "--slow", type=_duration, default=3.0, metavar="DURATION", help="runbooks: slow above (3s)"
    )


def run(args: argparse.Namespace, passthrough: list[str]) -> int:
    from synthetic.cli import collect
    from synthetic.errors import CatalogueError, ConfigError, StateError
    from synthetic.history import HistoryError

    try:
        hours = _hours(args.timezone, args.working_hours)
        if not 0 < args.objective < 100:
            raise ValueError(
                f"--objective: a percentage between 0 and 100 (got {args.objective:g})"
            )
        specs, config = collect(args, passthrough)
        if config is None:
            raise ValueError("no config was loaded")
        report = _build(args, specs, config, hours)
    except CatalogueError as exc:
        sys.stderr.write(str(exc))
        return _fail("the catalogue could not be collected (see above)")
    except (ConfigError, StateError, HistoryError, ValueError) as exc:
        return _fail(str(exc))
    from synthetic.reports.render import render

    rendered = config.masker.text(render(report, args.format))
    if args.out:
        try:
            Path(args.out).write_text(rendered, encoding="utf-8")
        except OSError as exc:
            return _fail(f"--out {args.out}: cannot write: {exc.strerror}")
        print(f"synthetic report: {args.kind} written to {args.out}")
    else:
        sys.stdout.write(rendered)
    return report.exit_code


def _build(args: argparse.Namespace, specs: list[Any], config: Any, hours: Any) -> Report:
    if args.kind == "runbooks":
        from synthetic.reports.links import fetch_links
        from synthetic.reports.runbooks import runbook_urls, runbooks_report

        named = runbook_urls(specs)
        results = fetch_links(
            list(named), concurrency=args.concurrency, timeout_s=args.timeout, slow_s=args.slow
        )
        return runbooks_report(config.environment.name, named, results)
    inputs = load_inputs(args, specs, config, hours)
    return build_report(args.kind, inputs)


def build_report(kind: str, inputs: Any) -> Report:
    """A history report of ``inputs``, its period and coverage stated."""
    from synthetic.reports.fatigue import fatigue_report
    from synthetic.reports.thresholds import thresholds_report
    from synthetic.reports.uptime import uptime_report

    make = {"fatigue": fatigue_report, "thresholds": thresholds_report, "uptime": uptime_report}
    report = make[kind](inputs)
    problem = inputs.store.problem
    unread = (f"The alert store could not be read: {problem}",) if problem else ()
    return dataclasses.replace(
        report,
        not_recorded=(*report.not_recorded, *unread),
        period=inputs.period.describe(),
        coverage=inputs.coverage.describe(inputs.period),
        data={
            "period": inputs.period.to_json(),
            "coverage": inputs.coverage.to_json(inputs.period),
            **report.data,
        },
    )


def load_inputs(args: argparse.Namespace, specs: list[Any], config: Any, hours: Any) -> Any:
    from synthetic.history import history_location, open_history
    from synthetic.options import DEFAULT_RESULTS_DIR, resolve_outside_pytest
    from synthetic.reports.data import Period, coverage_of, load_series
    from synthetic.reports.inputs import Inputs

    options = resolve_outside_pytest({"synthetic_results_dir": args.results_dir})
    results_dir = Path(options["synthetic_results_dir"] or DEFAULT_RESULTS_DIR)
    now = time.time()
    since = args.since if args.since is not None else _seconds(DEFAULT_SINCE[args.kind])
    if since <= 0:
        raise ValueError("--since: the period must be longer than 0s")
    period = Period(now - since, now)
    environment = config.environment.name
    where = history_location(config.history, results_dir)
    if "://" not in where and not Path(where).is_file():
        raise ValueError(
            f"no history at {where}: `synthetic serve` keeps one there, or name a shared "
            "one with `history` in the config"
        )
    store = open_history(
        config.history, results_dir=results_dir, describe=config.masker.text(config.history or "")
    )
    try:
        series = load_series(store, period, environment=environment, location=args.location)
        coverage = coverage_of(
            store, series, period, environment=environment, location=args.location
        )
    finally:
        store.close()
    return Inputs(
        environment=environment,
        period=period,
        coverage=coverage,
        series=series,
        specs={spec.node_id: spec for spec in specs},
        alerts=config.alerts,
        store=_alert_store(config, results_dir, now),
        hours=hours,
        objective=args.objective / 100,
    )


def _alert_store(config: Any, results_dir: Path, now: float) -> Any:
    from synthetic.alerts.pipeline import open_store_for
    from synthetic.alerts.settings import Silence
    from synthetic.errors import StateError
    from synthetic.reports.inputs import AlertStoreView

    store = open_store_for(config, "send", results_dir)
    try:
        document = store.read()
        stored = []
        for raw in document.get("silences", []):
            try:
                stored.append(Silence.from_json(raw))
            except (KeyError, TypeError, ValueError):
                continue
        silences = [s for s in (*config.alerts.silences, *stored) if s.until > now]
        return AlertStoreView(
            incidents=document.get("incidents", {}),
            silences=silences,
            outbox=store.outbox(),
            dead_letters=store.dead_letters(),
        )
    except StateError as exc:
        return AlertStoreView(problem=config.masker.text(str(exc)))
    finally:
        store.close()


def _hours(timezone: str, text: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from synthetic.reports.inputs import WorkingHours

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"--timezone: unknown timezone {timezone!r} (e.g. Europe/Berlin)"
        ) from None
    start, _, end = text.partition("-")
    try:
        hours = WorkingHours(timezone, int(start), int(end))
    except ValueError:
        hours = WorkingHours(timezone, 0, 0)
    if not 0 <= hours.start < hours.end <= 24:
        raise ValueError(f"--working-hours: expected START-END o'clock like 9-18 (got {text!r})")
    return hours


def _seconds(text: str) -> float:
    from synthetic.units import parse_duration

    return parse_duration(text)


def _fail(message: str) -> int:
    print(f"synthetic report: error: {message}", file=sys.stderr)
    return 2
