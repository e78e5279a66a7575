"""``synthetic alerts outbox|status|test`` and ``synthetic silence add|list|remove``.

They work on the state store a ``--alerts send`` run uses (the config's
``state``: a file, or Redis shared by several runners).
"""

from __future__ import annotations

import argparse
import datetime
import json
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthetic.errors import ConfigError, StateError
from synthetic.options import DEFAULT_RESULTS_DIR, resolve_outside_pytest
from synthetic.text import iso_utc
from synthetic.units import format_duration, parse_duration

if TYPE_CHECKING:
    from synthetic.alerts.model import RouteSeverity
    from synthetic.alerts.store import AlertStore, NewEntry
    from synthetic.config import Config

# The parsers are built on every `synthetic` command; what the actions need
# (the config's models, the store, the deliverer and its HTTP and SMTP
# clients) is imported when one runs.


def add_parsers(sub: Any, common: Any) -> None:
    """The ``alerts`` and ``silence`` sub-commands, on ``synthetic``'s parser."""
    alerts = sub.add_parser(
        "alerts",
        allow_abbrev=False,
        help="the alert outbox; the incidents and locations; send a test alert",
    )
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    outbox = alerts_sub.add_parser(
        "outbox", allow_abbrev=False, help="what waits to be delivered, its age and attempts"
    )
    common(outbox)
    outbox.add_argument("--json", action="store_true", help="print JSON")
    status = alerts_sub.add_parser(
        "status",
        allow_abbrev=False,
        help="the incidents, and what each location saw last (runners of several locations)",
    )
    common(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    test = alerts_sub.add_parser(
        "test",
        allow_abbrev=False,
        help="send a labelled test alert and its resolve through one receiver",
    )
    common(test)
    test.add_argument("--receiver", required=True, help="a receiver of the config's [alerts]")
    test.add_argument(
        "--severity",
        choices=("critical", "warning", "info"),
        help="default: the first severity the routes send to this receiver",
    )

    silence = sub.add_parser(
        "silence", allow_abbrev=False, help="hold back alerts of some checks for a while"
    )
    silence_sub = silence.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    add = silence_sub.add_parser("add", allow_abbrev=False, help="add a silence")
    common(add)
    for name in ("check", "metric", "component"):
        add.add_argument(f"--{name}", action="append", help=f"{name} (a glob; repeatable)")
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", help="how long, e.g. 2h or 30m")
    until.add_argument("--until", help="until when, ISO 8601 (UTC unless it says)")
    add.add_argument("--reason", default="", help="why (shown in `silence list`)")
    lister = silence_sub.add_parser("list", allow_abbrev=False, help="list silences")
    common(lister)
    lister.add_argument("--json", action="store_true", help="print JSON")
    remove = silence_sub.add_parser("remove", allow_abbrev=False, help="remove a silence")
    common(remove)
    remove.add_argument("id", help="the silence's id (from `silence list`)")


def run(args: argparse.Namespace) -> int:
    """Run an ``alerts`` or ``silence`` command; one-line errors, exit 2."""
    from synthetic.alerts.pipeline import open_store_for
    from synthetic.config import load_config

    try:
        # The same settings a run would use: --env, else SYNTHETIC_ENV, else the ini
        # key beside the config; --config, SYNTHETIC_CONFIG, the ini, the nearest.
        options = resolve_outside_pytest(
            {
                "synthetic_env": args.env,
                "synthetic_config": args.config,
                "synthetic_results_dir": args.results_dir,
            }
        )
        config = load_config(path=options["synthetic_config"], environment=options["synthetic_env"])
        if args.command == "alerts" and args.alerts_command == "test":
            return _test(args, config)
        results_dir = Path(options["synthetic_results_dir"] or DEFAULT_RESULTS_DIR)
        store = open_store_for(config, "send", results_dir)
        try:
            if args.command == "alerts" and args.alerts_command == "status":
                return _status(args, config, store)
            if args.command == "alerts":
                return _outbox(args, store)
            return _silence(args, config, store)
        finally:
            store.close()
    except (ConfigError, StateError, ValueError) as exc:
        print(f"synthetic {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _outbox(args: argparse.Namespace, store: AlertStore) -> int:
    from synthetic.alerts.pipeline import outbox_row

    now = time.time()
    pending = [outbox_row(e, now=now) for e in store.outbox()]
    dead = [outbox_row(e, now=now) for e in store.dead_letters()]
    if args.json:
        json.dump({"outbox": pending, "dead_letters": dead}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"outbox of {store.description}: {len(pending)} waiting, {len(dead)} rejected")
    for title, rows in (("waiting", pending), ("rejected", dead)):
        for row in rows:
            error = f": {row['last_error']}" if row["last_error"] else ""
            print(
                f"{title:<8} #{row['seq']} {row['receiver']} {row['kind']} {row['dedup_key']} "
                f"age {row['age_s']:.0f}s, {row['attempts']} attempt(s){error}"
            )
    return 0


def _status(args: argparse.Namespace, config: Config, store: AlertStore) -> int:
    from synthetic.alerts.quorum import matrix

    now = time.time()
    document = store.read()
    incidents = [
        {"key": key, **_incident_state(incident)}
        for key, incident in sorted(document.get("incidents", {}).items())
        if isinstance(incident, dict)
    ]
    where = matrix(document, config.alerts, now)
    if args.json:
        json.dump({"incidents": incidents, **where}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"alerts of {store.description} ({config.environment.name})")
    for row in incidents:
        print(f"{row['state']:<9} {row['key']}: {row['detail']}")
    if not incidents:
        print("no incident")
    if not where["locations"]:
        return 0
    window = format_duration(config.alerts.window_s)
    print(f"\nlocations (a result counts for {window}):")
    for name, head in where["locations"].items():
        state = "silent" if head["silent"] else "healthy" if head["healthy"] else "unhealthy"
        detail = f": {head['detail']}" if head["detail"] and not head["healthy"] else ""
        print(f"  {name:<16} {state:<9} reported {format_duration(head['age_s'])} ago{detail}")
    names = list(where["locations"])
    width = max((len(key) for key in where["checks"]), default=5)
    print(("\n" + " " * (width + 4) + "  ".join(f"{n:<9}" for n in names)).rstrip())
    for key, seen in where["checks"].items():
        cells = "  ".join(f"{seen.get(n, '-'):<9}" for n in names)
        print(f"  {key:<{width}}  {cells}".rstrip())
    return 0


def _incident_state(incident: dict[str, Any]) -> dict[str, str]:
    summary = str(incident.get("facts", {}).get("summary") or "")
    if incident.get("active"):
        since = iso_utc(float(incident.get("opened_at") or 0))
        return {"state": "firing", "detail": f"{incident.get('severity')} since {since}: {summary}"}
    if incident.get("breach_since"):
        return {"state": "pending", "detail": summary}
    return {"state": "resolved", "detail": str(incident.get("ok_summary") or summary)}


def _test(args: argparse.Namespace, config: Config) -> int:
    from synthetic.alerts.decide import receivers_for
    from synthetic.alerts.delivery import Deliverer
    from synthetic.alerts.model import Alert
    from synthetic.alerts.settings import check_receiver_name

    receiver = check_receiver_name(config.alerts, args.receiver)
    if receiver.type == "custom":
        raise ValueError(
            f"receiver '{receiver.name}' is custom: its plugin's pytest_synthetic_alert_send "
            "delivers it, in a run (synthetic run --alerts send)"
        )
    severity: RouteSeverity = args.severity or next(  # type: ignore[assignment]
        (
            s
            for s in ("critical", "warning", "info")
            if receiver.name
            in receivers_for(config.alerts, {"severity": s, "environment": config.environment.name})
        ),
        "info",
    )
    now = time.time()
    started = iso_utc(now)
    alert = Alert(
        dedup_key=f"synthetic/{config.environment.name}/test/{secrets.token_hex(4)}",
        action="trigger",
        severity=severity,
        summary="Test alert from `synthetic alerts test`: routing works. No action needed.",
        environment=config.environment.name,
        metric="synthetic.test",
        check_id="synthetic alerts test",
        priority="P4",
        runbook=config.runbooks.resolve("incident-response"),
        started_at=started,
        run_id=f"test-{started}",
        test=True,
        kind="test",
    )
    resolve = Alert(**{**alert.to_json(), "action": "resolve", "ended_at": iso_utc(time.time())})
    ok = True
    with Deliverer(masker=config.masker) as deliverer:
        for step in (alert, resolve):
            result = deliverer.send(receiver, step, now=time.time())
            print(f"{receiver.name}: test {step.action}: {result.status} ({result.detail})")
            ok = ok and result.status == "delivered"
    return 0 if ok else 1


def _silence(args: argparse.Namespace, config: Config, store: AlertStore) -> int:
    from synthetic.alerts.settings import Silence

    now = time.time()
    if args.silence_command == "add":
        matchers = {
            name: tuple(getattr(args, name))
            for name in ("check", "metric", "component")
            if getattr(args, name)
        }
        if not matchers:
            raise ValueError("a silence needs at least one of --check, --metric, --component")
        until = now + parse_duration(args.duration) if args.duration else _parse_until(args.until)
        if until <= now:
            if args.duration:
                raise ValueError(f"--for {args.duration}: a silence must last longer than that")
            raise ValueError(f"--until {args.until}: that is in the past")
        silence = Silence(
            id=f"s-{secrets.token_hex(3)}",
            until=until,
            matchers=matchers,
            reason=args.reason,
            created_by=_user(),
        )

        def add(document: dict[str, Any]) -> tuple[dict[str, Any], list[NewEntry]]:
            document.setdefault("silences", []).append(silence.to_json())
            return document, []

        store.update(add, now=now)
        print(f"silence {silence.id} until {iso_utc(until)} ({config.environment.name})")
        return 0
    if args.silence_command == "remove":
        found: list[bool] = []

        def remove(document: dict[str, Any]) -> tuple[dict[str, Any], list[NewEntry]]:
            kept = [s for s in document.get("silences", []) if s.get("id") != args.id]
            found[:] = [len(kept) != len(document.get("silences", []))]
            document["silences"] = kept
            return document, []

        store.update(remove, now=now)
        if not found[0]:
            print(f"synthetic silence: no silence '{args.id}'", file=sys.stderr)
            return 1
        print(f"removed silence {args.id}")
        return 0
    rows = [
        {**s.to_json(), "source": "config"} for s in config.alerts.silences if s.until > now
    ] + [
        {**s, "source": "store"}
        for s in store.read().get("silences", [])
        if float(s.get("until", 0)) > now
    ]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for row in rows:
        shown = " ".join(f"{k}={','.join(v)}" for k, v in row["matchers"].items())
        print(
            f"{row['id']:<10} until {iso_utc(row['until'])} {shown} "
            f"[{row['source']}, {row.get('created_by') or '?'}] {row['reason']}"
        )
    print(f"{len(rows)} active silence(s)")
    return 0


def _parse_until(text: str) -> float:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--until {text!r}: expected an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
