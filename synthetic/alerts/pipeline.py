"""One run's alerting: state -> decisions -> outbox -> delivery, on the controller.

``--alerts`` chooses how far it goes:

- ``off``: nothing (``synthetic gate``'s default: a deploy gate decides, it does not page);
- ``dry-run`` (the default): decisions are kept in a local file store of their
  own (``alerts-<env>.dry-run.json``, never the shared one, so a laptop cannot
  mark a real incident as told), and every payload that would be sent is
  written, masked, to ``<results>/alerts/``;
- ``send``: the configured state store (a file, or Redis shared by several
  runners); the outbox is drained oldest first, per receiver in order, and
  what could not be delivered stays there for the next run.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from synthetic.alerts.decide import Context, Notice, Status, decide
from synthetic.alerts.delivery import Deliverer, DeliveryResult
from synthetic.alerts.model import Alert
from synthetic.alerts.payloads import render
from synthetic.alerts.probe import Health, probe
from synthetic.alerts.settings import GUIDE_ROUTES, Receiver, Silence
from synthetic.alerts.store import (
    AlertStore,
    FileAlertStore,
    NewEntry,
    OutboxEntry,
    open_alert_store,
)
from synthetic.config import Config
from synthetic.errors import StateError
from synthetic.files import write_json_atomic
from synthetic.redact import Masker
from synthetic.results import RunResult

# On top of the attempt chain and the time to record its outcome: one more
# store call riding out a restart (Redis: about 4.4 s of retries), and drift.
LEASE_SLACK_S = 5.0
# Between tries to record an outcome while the store is away.
RECORD_PAUSE_S = 0.5
# Bounds on what a receiver that stays down (or keeps refusing) leaves
# behind: past them the oldest alerts become dead letters, and the oldest
# dead letters are forgotten, each with a note.
MAX_WAITING_PER_RECEIVER = 500
MAX_DEAD_LETTERS = 500


@dataclass(frozen=True)
class Lease:
    """How long a runner holds an entry it sends: longer than all it may do with it.

    ``chain_s`` bounds the attempt chain (the receiver's ``budget_s``, a hard
    deadline), ``record_for_s`` the tries to record its outcome; the lease
    (``seconds``, renewed right before the first request) outlives both, so
    no other runner can take the entry while its outcome may still be recorded.
    """

    chain_s: float
    record_for_s: float
    seconds: float

    def __post_init__(self) -> None:
        needed = self.chain_s + self.record_for_s + LEASE_SLACK_S
        if not self.seconds >= needed:
            raise ValueError(
                f"a lease of {self.seconds:g} s is shorter than the {self.chain_s:g} s "
                f"attempt chain plus {self.record_for_s:g} s to record it and "
                f"{LEASE_SLACK_S:g} s of slack"
            )

    @classmethod
    def covering(cls, chain_s: float, record_for_s: float) -> Lease:
        return cls(chain_s, record_for_s, chain_s + record_for_s + LEASE_SLACK_S)


# A hook that may replace the rendered request of one alert for one receiver.
PayloadHook = Callable[[Receiver, Alert, dict[str, Any]], dict[str, Any] | None]
# A hook that may deliver one alert itself (a receiver type of a plugin).
SendHook = Callable[[Receiver, Alert, dict[str, Any]], DeliveryResult | None]


@dataclass
class AlertReport:
    """What alerting did in one run, for the terminal and ``alerts.json``."""

    mode: str
    statuses: list[Status] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    deliveries: list[tuple[OutboxEntry, DeliveryResult]] = field(default_factory=list)
    pending: list[OutboxEntry] = field(default_factory=list)
    dead: list[OutboxEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def to_json(self, *, now: float) -> dict[str, Any]:
        return {
            "schema": "synthetic.alerting/v1",
            "mode": self.mode,
            "incidents": [s.to_json() for s in self.statuses],
            "notices": [
                {
                    "receiver": n.receiver,
                    "kind": n.alert.kind,
                    "action": n.alert.action,
                    "severity": n.alert.severity,
                    "dedup_key": n.alert.dedup_key,
                }
                for n in self.notices
            ],
            "deliveries": [
                {
                    "id": e.id,
                    "receiver": e.receiver,
                    "status": r.status,
                    "detail": r.detail,
                    "attempts": e.attempts + r.attempts,
                }
                for e, r in self.deliveries
            ],
            "outbox": [outbox_row(e, now=now) for e in self.pending],
            "dead_letters": [outbox_row(e, now=now) for e in self.dead],
            "notes": self.notes,
        }


def outbox_row(entry: OutboxEntry, *, now: float) -> dict[str, Any]:
    alert = entry.alert
    return {
        "id": entry.id,
        "seq": entry.seq,
        "receiver": entry.receiver,
        "kind": alert.get("kind"),
        "action": alert.get("action"),
        "dedup_key": alert.get("dedup_key"),
        "age_s": round(max(0.0, now - entry.created_at), 1),
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        # Still set once its runner is done: that attempt's outcome is unknown.
        "sending_at": entry.sending_at,
    }


def open_store_for(config: Config, mode: str, results_dir: Path) -> AlertStore:
    environment = config.environment.name
    if mode == "dry-run":
        return FileAlertStore(results_dir / f"alerts-{environment}.dry-run.json")
    return open_alert_store(
        config.state,
        environment=environment,
        results_dir=results_dir,
        describe=config.masker.text(config.state or ""),
    )


def process(
    run: RunResult,
    *,
    config: Config,
    mode: str,
    results_dir: Path,
    payload_hook: PayloadHook | None = None,
    send_hook: SendHook | None = None,
    now: float | None = None,
) -> AlertReport:
    """Decide on ``run``'s results and deliver (or write) what follows.

    Never raises for a store or a receiver that fails: the report says why,
    and what was not delivered stays in the outbox.
    """
    report = AlertReport(mode=mode)
    if mode == "off":
        return report
    now = time.time() if now is None else now
    settings = config.alerts
    if mode == "send":
        report.notes.extend(settings.notes)
    if settings.receivers and not settings.routes:
        report.notes.append(
            "alerts: no [[alerts.routes]], and no receiver is named as the guide's "
            f"({', '.join(name for _, name in GUIDE_ROUTES)}), which are routed by severity "
            "without them: no alert goes anywhere"
        )
    try:
        store = open_store_for(config, mode, results_dir)
    except (StateError, OSError) as exc:
        report.notes.append(f"alerts: {exc}")
        return report
    if mode == "dry-run":
        # `synthetic silence add` writes to the shared store: a dry run honours
        # those silences too (reading them only), so it shows what send would do.
        settings = replace(
            settings, silences=(*settings.silences, *_shared_silences(config, results_dir, report))
        )
    health = Health(True, "")
    if run.location is not None and settings.location_probe:
        health = probe(settings.location_probe, masker=config.masker)
        if not health.healthy:
            report.notes.append(
                f"alerts: location {run.location} reaches nothing ({health.detail}): "
                "its results are left out of quorums"
            )
    context = Context(
        environment=run.environment,
        run_id=run.run_id,
        now=now,
        target=run.target,
        location=run.location,
        location_healthy=health.healthy,
        location_detail=health.detail,
    )
    try:
        decided: dict[str, Any] = {}
        # A reminder (an Alertmanager refresh every run) for a receiver that
        # still has an undelivered alert of the same incident adds nothing:
        # while a receiver is down, its outbox must not grow by one each run.
        waiting = {(e.receiver, e.alert.get("dedup_key")) for e in store.outbox()}

        def change(document: dict[str, Any]) -> tuple[dict[str, Any], Sequence[NewEntry]]:
            decision = decide(run.checks, document, settings, context)
            decision.notices = [
                n
                for n in decision.notices
                if n.alert.kind != "remind" or (n.receiver, n.alert.dedup_key) not in waiting
            ]
            decided["decision"] = decision
            entries = [NewEntry(n.receiver, n.alert.to_json()) for n in decision.notices]
            return decision.document, entries

        store.update(change, now=now)
        decision = decided["decision"]
        report.statuses = decision.statuses
        report.notices = decision.notices
    except StateError as exc:
        report.notes.append(f"alerts: not decided this run: {exc}")
    try:
        _drain(
            store,
            report,
            config=config,
            run_id=run.run_id,
            results_dir=results_dir,
            payload_hook=payload_hook,
            send_hook=send_hook,
        )
        report.pending = store.outbox()
        report.dead = store.dead_letters()
    except StateError as exc:
        report.notes.append(f"alerts: outbox: {exc}")
    finally:
        store.close()
    _note_waiting(report, config, now=now)
    if mode == "send" and settings.heartbeat_url:
        with Deliverer(masker=config.masker) as deliverer:
            beat = deliverer.ping(settings.heartbeat_url)
        if beat.status != "delivered":
            report.notes.append(f"alerts: heartbeat not delivered: {beat.detail}")
    return report


def _shared_silences(config: Config, results_dir: Path, report: AlertReport) -> list[Silence]:
    try:
        shared = open_store_for(config, "send", results_dir)
        try:
            document = shared.read()
        finally:
            shared.close()
    except (StateError, OSError) as exc:
        report.notes.append(f"alerts: silences of the shared store not read: {exc}")
        return []
    found = []
    for data in document.get("silences", []):
        try:
            found.append(Silence.from_json(data))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _drain(
    store: AlertStore,
    report: AlertReport,
    *,
    config: Config,
    run_id: str,
    results_dir: Path,
    payload_hook: PayloadHook | None,
    send_hook: SendHook | None,
) -> None:
    """Deliver the outbox oldest first; per receiver strictly in order, so a
    resolve never overtakes its trigger: a receiver that fails (or whose
    entry another runner holds) waits for the next run."""
    receivers = config.alerts.receivers
    record_for_s = config.alerts.record_for_s
    blocked: set[str] = set()
    dry_run = report.mode == "dry-run"
    if dry_run:
        # The folder shows what this run would send, not what earlier runs would have.
        for old in (results_dir / "alerts").glob("*.json"):
            old.unlink(missing_ok=True)
    _bound(store, report, owner=run_id, record_for_s=record_for_s)
    deliverer = None if dry_run else Deliverer(masker=config.masker)
    try:
        for entry in store.outbox():
            if entry.receiver in blocked:
                continue
            receiver = receivers.get(entry.receiver)
            lease = Lease.covering(receiver.budget_s if receiver else 0.0, record_for_s)
            if not store.claim(entry.id, owner=run_id, lease_s=lease.seconds):
                blocked.add(entry.receiver)
                continue
            now = time.time()
            alert = _alert_of(entry)
            if receiver is None:
                result = DeliveryResult(
                    "rejected", f"receiver '{entry.receiver}' is not configured any more", 0
                )
            elif isinstance(alert, str):
                result = DeliveryResult("rejected", alert, 0)
            else:
                request = render(receiver, alert, now=now).request
                if payload_hook is not None:
                    request = payload_hook(receiver, alert, request) or request
                if dry_run:
                    report.written.append(
                        _write(results_dir, entry, receiver, config.masker.data(request))
                    )
                    result = DeliveryResult("delivered", "written (dry run)", 0)
                else:
                    assert deliverer is not None
                    # Marked and held anew right before the request: the lease
                    # covers the whole chain and the recording of its outcome.
                    now = time.time()
                    before = store.begin(entry.id, owner=run_id, lease_s=lease.seconds, now=now)
                    if before is None:  # its lease ran out (a slow hook) and another took it
                        blocked.add(entry.receiver)
                        continue
                    started = time.monotonic()
                    result = _send(deliverer, receiver, alert, request, now, send_hook)
                    took = time.monotonic() - started
                    if took > lease.chain_s + LEASE_SLACK_S:  # a plugin's sender, unbounded
                        report.notes.append(
                            f"alerts: sending to {receiver.name} took {took:.0f} s, past its "
                            f"{receiver.budget_s:g} s budget: another runner may send it too"
                        )
                    if before.sending_at is not None:
                        result = replace(result, detail=_again(receiver, before, result))
            report.deliveries.append((entry, result))
            _record(store, entry, result, owner=run_id, now=now, within_s=record_for_s)
            if result.status == "failed":
                blocked.add(entry.receiver)
    finally:
        if deliverer is not None:
            deliverer.close()


def _alert_of(entry: OutboxEntry) -> Alert | str:
    """The entry's alert, or why it cannot be read (a store written by hand, or damaged)."""
    try:
        return Alert.from_json(entry.alert)
    except (TypeError, ValueError) as exc:
        return f"the stored alert cannot be read: {exc}"


def _bound(store: AlertStore, report: AlertReport, *, owner: str, record_for_s: float) -> None:
    """Keep the outbox and the dead letters within their bounds, saying what went."""
    waiting: dict[str, list[OutboxEntry]] = {}
    for entry in store.outbox():
        waiting.setdefault(entry.receiver, []).append(entry)
    for name, entries in sorted(waiting.items()):
        excess = entries[: max(0, len(entries) - MAX_WAITING_PER_RECEIVER)]
        # Held ones are being sent by another runner right now: not dropped.
        moved = [e for e in excess if store.claim(e.id, owner=owner, lease_s=LEASE_SLACK_S)]
        for entry in moved:
            error = f"outbox full: {len(entries)} alerts waited for {name}, the oldest dropped"
            dropped = DeliveryResult("rejected", error, 0)
            _record(store, entry, dropped, owner=owner, now=time.time(), within_s=record_for_s)
        if moved:
            report.notes.append(
                f"alerts: {len(moved)} oldest alert(s) for {name} moved to the dead letters: "
                f"more than {MAX_WAITING_PER_RECEIVER} waited"
            )
    forgotten = store.prune_dead(keep=MAX_DEAD_LETTERS)
    if forgotten:
        report.notes.append(
            f"alerts: {forgotten} oldest dead letter(s) forgotten: "
            f"at most {MAX_DEAD_LETTERS} are kept"
        )


def _record(
    store: AlertStore,
    entry: OutboxEntry,
    result: DeliveryResult,
    *,
    owner: str,
    now: float,
    within_s: float,
) -> None:
    """Record ``result`` in the store, trying again for ``within_s`` while it is away.

    A delivery that is not recorded is sent again by a later run, so it is
    worth waiting for a store that restarts; the lease covers the wait.
    """
    give_up_at = time.monotonic() + within_s
    while True:
        try:
            if result.status == "delivered":
                store.delivered(entry.id, owner=owner)
            else:
                store.failed(
                    entry.id,
                    owner=owner,
                    error=result.detail,
                    permanent=result.status == "rejected",
                    now=now,
                )
            return
        except StateError as exc:
            if time.monotonic() + RECORD_PAUSE_S > give_up_at:
                what = "accepted" if result.status == "delivered" else result.status
                raise StateError(
                    f"{entry.receiver} {what} {entry.alert.get('kind')} "
                    f"{entry.alert.get('dedup_key')}, but the store could not record it "
                    f"within {within_s:g} s, so a later run sends it again: {exc}"
                ) from None
            time.sleep(RECORD_PAUSE_S)


def _again(receiver: Receiver, before: OutboxEntry, result: DeliveryResult) -> str:
    """The detail of a send whose earlier attempt's outcome is unknown."""
    when = datetime.datetime.fromtimestamp(before.sending_at or 0.0, datetime.UTC)
    folded = {
        "pagerduty": "PagerDuty folds a repeat into its alert by dedup_key",
        "alertmanager": "Alertmanager folds a repeat into its alert by labels",
    }.get(receiver.type, "it may show twice")
    return (
        f"sent again, the outcome of the attempt at {when:%Y-%m-%dT%H:%M:%SZ} "
        f"being unknown ({folded}): {result.detail}"
    )


def _send(
    deliverer: Deliverer,
    receiver: Receiver,
    alert: Alert,
    request: dict[str, Any],
    now: float,
    send_hook: SendHook | None,
) -> DeliveryResult:
    if send_hook is not None:
        handled = send_hook(receiver, alert, request)
        if handled is not None:
            return handled
    return deliverer.send(receiver, alert, now=now, request=request)


def _write(
    results_dir: Path, entry: OutboxEntry, receiver: Receiver, request: dict[str, Any]
) -> Path:
    kind = entry.alert.get("kind", "alert")
    path = results_dir / "alerts" / f"{entry.seq:06d}-{receiver.name}-{kind}.json"
    write_json_atomic(
        path,
        {
            "receiver": receiver.name,
            "type": receiver.type,
            "request": request,
            "alert": entry.alert,
        },
        indent=2,
    )
    return path


def _note_waiting(report: AlertReport, config: Config, *, now: float) -> None:
    """A line per receiver that cannot send, with what waits for it."""
    waiting: dict[str, list[OutboxEntry]] = {}
    for entry in report.pending:
        waiting.setdefault(entry.receiver, []).append(entry)
    for name, entries in sorted(waiting.items()):
        receiver = config.alerts.receivers.get(name)
        oldest = max(now - e.created_at for e in entries)
        why = (
            "; ".join(receiver.missing) if receiver and receiver.missing else entries[0].last_error
        )
        report.notes.append(
            f"alerts: {len(entries)} waiting in the outbox for {name} "
            f"(oldest {oldest:.0f}s): {why or 'not yet attempted'}"
        )
    if report.dead:
        report.notes.append(
            f"alerts: {len(report.dead)} rejected by a receiver (see `synthetic alerts outbox`)"
        )


def summary_lines(report: AlertReport, *, receivers: int = 1) -> list[str]:
    """The terminal's alerting section: each incident, then each delivery."""
    lines = [
        f"{status.state:<9} {status.key}: {status.detail}"
        for status in report.statuses
        if status.state != "inhibited"
    ]
    inhibited: dict[str, list[str]] = {}
    for status in report.statuses:
        if status.state == "inhibited":
            inhibited.setdefault(status.detail, []).append(status.key)
    for detail, keys in inhibited.items():
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        lines.append(f"inhibited {len(keys)} check{'s' * (len(keys) != 1)} ({shown}): {detail}")
    for entry, result in report.deliveries:
        alert = entry.alert
        what = (
            f"{entry.receiver}: {alert.get('kind')} {alert.get('severity')} {alert.get('metric')}"
        )
        if report.mode == "dry-run":
            lines.append(f"would send {what}")
        else:
            lines.append(f"{result.status:<9} {what} ({result.detail})")
    if report.written:
        lines.append(f"{len(report.written)} payload(s) written to {report.written[0].parent}")
    if not receivers and report.statuses:
        lines.append("no receivers: add [alerts.receivers] and [[alerts.routes]] to the config")
    return lines


def write_report(
    report: AlertReport, results_dir: Path, *, masker: Masker, now: float | None = None
) -> Path:
    path = results_dir / "alerts.json"
    document = report.to_json(now=time.time() if now is None else now)
    write_json_atomic(path, masker.data(document), indent=2)
    return path
