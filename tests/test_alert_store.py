"""synthetic.alerts.store: one contract for the file and Redis stores, then many runners at once."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
import redis

from synthetic.alerts.store import (
    ALERTS_SCHEMA,
    AlertStore,
    Change,
    FileAlertStore,
    NewEntry,
    OutboxEntry,
    RedisAlertStore,
    empty_document,
    open_alert_store,
)
from synthetic.errors import ConfigError, StateError
from synthetic.sandbox.redis_server import RedisServer, RedisServerError
from tests.support.spawn import run_at_once

# redis_url (a real redis-server) and refused_port come from tests/conftest.py.

WORKERS = 4


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def open_incident(key: str, receiver: str = "pagerduty") -> Change:
    """The decision every runner makes: open the incident and page, unless it is open."""

    def change(document: dict[str, Any]) -> tuple[dict[str, Any], list[NewEntry]]:
        if key in document["incidents"]:
            return document, []
        document["incidents"][key] = {"state": "open"}
        return document, [NewEntry(receiver, {"dedup_key": key, "action": "trigger"})]

    return change


def enqueue(*keys: str) -> Change:
    """Page once more for each key, whatever the document says."""

    def change(document: dict[str, Any]) -> tuple[dict[str, Any], list[NewEntry]]:
        document["meta"]["updates"] = document["meta"].get("updates", 0) + 1
        return document, [NewEntry("slack", {"dedup_key": key}) for key in keys]

    return change


def keys_of(entries: list[OutboxEntry]) -> list[str]:
    return [entry.alert["dedup_key"] for entry in entries]


def make_store(kind: str, where: str, environment: str) -> AlertStore:
    if kind == "file":
        return FileAlertStore(Path(where))
    return RedisAlertStore(where, environment, description="redis alert store")


@pytest.fixture(params=["file", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def where(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The file or the Redis URL for ``kind``; Redis only started when asked for."""
    if kind == "file":
        return str(tmp_path / "alerts.json")
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def store(kind: str, where: str) -> Iterator[AlertStore]:
    opened = make_store(kind, where, unique("staging"))
    yield opened
    opened.close()


# --- the contract, for both stores ---------------------------------------------------


def test_an_empty_store(store: AlertStore) -> None:
    assert store.read() == empty_document()
    assert store.outbox() == []
    assert store.dead_letters() == []


def test_update_writes_the_document_and_its_entries_together(store: AlertStore) -> None:
    document, entries = store.update(enqueue("db", "cache"), now=1732406400.5)

    assert document == {**empty_document(), "meta": {"updates": 1}}
    assert store.read() == document
    assert store.outbox() == entries
    assert keys_of(entries) == ["db", "cache"]
    assert [entry.receiver for entry in entries] == ["slack", "slack"]
    assert {entry.created_at for entry in entries} == {1732406400.5}
    assert {entry.attempts for entry in entries} == {0}
    assert entries[0].seq < entries[1].seq
    assert entries[0].id != entries[1].id


def test_the_outbox_is_in_seq_order_across_updates(store: AlertStore) -> None:
    written = [entry for keys in ("ab", "c", "", "de") for entry in store.update(enqueue(*keys))[1]]

    pending = store.outbox()
    assert keys_of(pending) == ["a", "b", "c", "d", "e"]
    assert pending == written
    seqs = [entry.seq for entry in pending]
    assert seqs == sorted(set(seqs))
    assert store.read()["meta"] == {"updates": 4}


def test_a_claim_is_exclusive_until_its_lease_expires(store: AlertStore) -> None:
    (entry,) = store.update(enqueue("db"))[1]

    assert store.claim(entry.id, owner="eu", lease_s=0.3)
    assert not store.claim(entry.id, owner="us", lease_s=30)
    assert store.claim(entry.id, owner="eu", lease_s=0.3)  # renewed by its holder
    time.sleep(0.4)  # eu died mid-delivery: its lease runs out
    assert store.claim(entry.id, owner="us", lease_s=30)
    assert not store.claim(entry.id, owner="eu", lease_s=30)


def test_a_delivered_entry_is_gone(store: AlertStore) -> None:
    first, second = store.update(enqueue("db", "cache"))[1]
    assert store.claim(first.id, owner="eu", lease_s=30)

    store.delivered(first.id, owner="eu")

    assert store.outbox() == [second]
    assert not store.claim(first.id, owner="us", lease_s=30)
    assert not store.claim("no-such-entry", owner="us", lease_s=30)
    store.delivered(first.id, owner="eu")  # twice is harmless
    assert store.outbox() == [second]


def test_a_failure_counts_an_attempt_and_keeps_the_order(store: AlertStore) -> None:
    entries = store.update(enqueue("a", "b", "c"))[1]
    middle = entries[1]
    assert store.claim(middle.id, owner="eu", lease_s=30)

    store.failed(middle.id, owner="eu", error="HTTP 503", permanent=False, now=1732406460.0)

    pending = store.outbox()
    assert keys_of(pending) == ["a", "b", "c"]
    assert pending[1].attempts == 1
    assert pending[1].last_error == "HTTP 503"
    assert pending[1].last_attempt_at == 1732406460.0
    assert pending[1].seq == middle.seq
    # The lease is released: the next runner retries at once.
    assert store.claim(middle.id, owner="us", lease_s=30)
    store.failed(middle.id, owner="us", error="timeout", permanent=False, now=1732406520.0)
    assert store.outbox()[1].attempts == 2
    assert store.outbox()[1].last_error == "timeout"
    assert store.dead_letters() == []


def test_a_permanent_failure_is_a_dead_letter(store: AlertStore) -> None:
    first, second = store.update(enqueue("db", "cache"))[1]
    assert store.claim(first.id, owner="eu", lease_s=30)

    store.failed(first.id, owner="eu", error="HTTP 400", permanent=True, now=1732406460.0)

    assert store.outbox() == [second]
    (dead,) = store.dead_letters()
    assert (dead.id, dead.seq, dead.attempts, dead.last_error) == (
        first.id,
        first.seq,
        1,
        "HTTP 400",
    )
    assert not store.claim(first.id, owner="us", lease_s=30)
    # A late report about an entry that is gone changes nothing.
    store.failed(first.id, owner="eu", error="again", permanent=False, now=1732406520.0)
    assert store.dead_letters() == [dead]
    assert store.outbox() == [second]


def test_begin_marks_the_entry_and_holds_it_anew(store: AlertStore) -> None:
    first, second = store.update(enqueue("db", "cache"))[1]
    assert store.claim(first.id, owner="eu", lease_s=0.2)

    before = store.begin(first.id, owner="eu", lease_s=30, now=1732406460.0)

    assert before == first  # as it was: no earlier attempt left its outcome unknown
    marked = store.outbox()[0]
    assert (marked.sending_at, marked.sending_by) == (1732406460.0, "eu")
    time.sleep(0.3)  # past the claim's lease: begin's holds
    assert not store.claim(first.id, owner="us", lease_s=30)
    assert store.begin(first.id, owner="us", lease_s=30, now=1732406461.0) is None
    assert store.begin("no-such-entry", owner="eu", lease_s=30, now=1732406461.0) is None
    # A recorded failure clears the mark; only an unrecorded outcome leaves it.
    store.failed(first.id, owner="eu", error="HTTP 503", permanent=False, now=1732406462.0)
    assert store.outbox()[0].sending_at is None
    assert store.outbox()[1] == second


def test_an_outcome_never_recorded_is_seen_by_the_next_sender(store: AlertStore) -> None:
    (entry,) = store.update(enqueue("db"))[1]
    assert store.claim(entry.id, owner="eu", lease_s=0.2)
    assert store.begin(entry.id, owner="eu", lease_s=0.2, now=1732406460.0) == entry
    time.sleep(0.3)  # eu sent it and died before recording the outcome

    assert store.claim(entry.id, owner="us", lease_s=30)
    before = store.begin(entry.id, owner="us", lease_s=30, now=1732406520.0)

    assert before is not None
    assert (before.sending_at, before.sending_by) == (1732406460.0, "eu")


def test_prune_dead_keeps_the_newest(store: AlertStore) -> None:
    entries = store.update(enqueue(*"abcde"))[1]
    for entry in entries:
        store.failed(entry.id, owner="eu", error="HTTP 400", permanent=True, now=1.0)

    assert store.prune_dead(keep=2) == 3
    assert keys_of(store.dead_letters()) == ["d", "e"]
    assert store.prune_dead(keep=2) == 0
    assert store.prune_dead(keep=0) == 2
    assert store.dead_letters() == []


def test_a_change_that_raises_writes_nothing(store: AlertStore) -> None:
    before, entries = store.update(open_incident("db"))

    def broken(document: dict[str, Any]) -> tuple[dict[str, Any], list[NewEntry]]:
        document["incidents"].clear()  # on the copy it was given
        raise ValueError("bug in a decision")

    with pytest.raises(ValueError, match="bug in a decision"):
        store.update(broken)

    assert store.read() == before
    assert store.outbox() == entries


def test_a_change_that_returns_no_document_is_a_state_error(store: AlertStore) -> None:
    store.update(open_incident("db"))

    with pytest.raises(StateError, match=f"the change returned: not a {ALERTS_SCHEMA} document"):
        store.update(lambda document: ({"incidents": {}}, [NewEntry("slack", {})]))

    assert list(store.read()["incidents"]) == ["db"]
    assert len(store.outbox()) == 1


def test_the_change_decides_on_what_is_stored(store: AlertStore) -> None:
    assert len(store.update(open_incident("db"))[1]) == 1
    document, entries = store.update(open_incident("db"))

    assert entries == []
    assert document["incidents"] == {"db": {"state": "open"}}
    assert len(store.outbox()) == 1


# --- many runners at once (real processes) ---------------------------------------------


def _runner(
    job: str, kind: str, where: str, environment: str, number: int, barrier: Barrier, out: str
) -> None:
    """One runner in its own process (spawned: importable at module level)."""
    store = make_store(kind, where, environment)
    owner = f"runner-{number}"
    barrier.wait(timeout=30)
    if job == "open":
        for n in range(INCIDENTS):
            store.update(open_incident(f"incident-{n}"))
    else:
        with Path(out, f"{owner}.txt").open("a", encoding="utf-8") as sent:
            while pending := store.outbox():
                for entry in pending:
                    if store.claim(entry.id, owner=owner, lease_s=30):
                        sent.write(entry.id + "\n")  # "sent": recorded before it is removed
                        sent.flush()
                        store.delivered(entry.id, owner=owner)
    store.close()


INCIDENTS = 25


def run_runners(job: str, kind: str, where: str, environment: str, out: Path) -> None:
    codes = run_at_once(
        WORKERS,
        _runner,
        lambda n, barrier: (job, kind, where, environment, n, barrier, str(out)),
    )
    assert codes == [0] * WORKERS


@pytest.mark.slow
def test_runners_at_once_open_each_incident_once(kind: str, where: str, tmp_path: Path) -> None:
    environment = unique("production")

    run_runners("open", kind, where, environment, tmp_path)

    store = make_store(kind, where, environment)
    pending = store.outbox()
    assert sorted(keys_of(pending)) == sorted(f"incident-{n}" for n in range(INCIDENTS))
    assert len(store.read()["incidents"]) == INCIDENTS
    seqs = [entry.seq for entry in pending]
    assert seqs == sorted(set(seqs))


@pytest.mark.slow
def test_runners_at_once_deliver_each_entry_once(kind: str, where: str, tmp_path: Path) -> None:
    environment = unique("production")
    store = make_store(kind, where, environment)
    keys = [f"incident-{n}" for n in range(60)]
    written = store.update(enqueue(*keys))[1]

    run_runners("drain", kind, where, environment, tmp_path)

    sent = collections.Counter(
        line for log in tmp_path.glob("runner-*.txt") for line in log.read_text().split()
    )
    assert sent == collections.Counter(entry.id for entry in written)
    assert store.outbox() == []
    assert store.dead_letters() == []


# --- the file store --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "alert state is not valid JSON (Expecting property name"),
        ("", "alert state is not valid JSON"),
        (json.dumps({"schema": "synthetic.alerts/v2"}), f"not a {ALERTS_SCHEMA} file"),
        (json.dumps(empty_document()), f"not a {ALERTS_SCHEMA} document"),
    ],
    ids=["not-json", "empty", "other-schema", "a-bare-document"],
)
@pytest.mark.parametrize("operation", ["read", "update", "outbox"])
def test_a_bad_file_is_moved_aside(
    tmp_path: Path, content: str, problem: str, operation: str
) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(content, encoding="utf-8")
    store = FileAlertStore(path)
    calls: dict[str, Callable[[], Any]] = {
        "read": store.read,
        "update": lambda: store.update(open_incident("db")),
        "outbox": store.outbox,
    }

    with pytest.raises(StateError) as info:
        calls[operation]()

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {problem}")
    (aside,) = tmp_path.glob("alerts.json.corrupt-*")
    assert aside.name in message
    assert aside.read_text(encoding="utf-8") == content
    # The next run starts afresh.
    assert store.read() == empty_document()


@pytest.mark.parametrize(
    "damage",
    [
        {"outbox": {}},
        {"seq": "7"},
        {"leases": []},
        {"outbox": [{"id": "x"}]},
        {"document": {"schema": ALERTS_SCHEMA, "incidents": []}},
    ],
)
def test_a_file_with_a_bad_part_is_moved_aside(tmp_path: Path, damage: dict[str, Any]) -> None:
    path = tmp_path / "alerts.json"
    store = FileAlertStore(path)
    store.update(enqueue("db"))
    path.write_text(json.dumps({**json.loads(path.read_text()), **damage}), encoding="utf-8")

    with pytest.raises(StateError, match=r"moved aside to alerts\.json\.corrupt-"):
        store.outbox()

    assert store.outbox() == []


def test_the_file_store_writes_one_file_next_to_its_lock(tmp_path: Path) -> None:
    store = FileAlertStore(tmp_path / "alerts.json")
    (entry,) = store.update(enqueue("db"), now=10.0)[1]

    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.json", "alerts.json.lock"]
    data = json.loads((tmp_path / "alerts.json").read_text(encoding="utf-8"))
    assert data["schema"] == ALERTS_SCHEMA
    assert data["outbox"] == [entry.to_json()]
    assert data["seq"] == entry.seq


def test_an_unwritable_file_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    store = FileAlertStore(blocker / "alerts.json")

    with pytest.raises(StateError, match=r"not-a-dir/alerts\.json\.lock: cannot open lock: "):
        store.update(enqueue("db"))


# --- the Redis store -------------------------------------------------------------------


def test_the_redis_key_layout(redis_url: str) -> None:
    environment = unique("staging")
    store = RedisAlertStore(redis_url, environment, description="redis")
    first, second = store.update(enqueue("db", "cache"))[1]
    assert store.claim(first.id, owner="eu", lease_s=30)

    client = redis.Redis.from_url(redis_url)
    prefix = f"synthetic:alerts:{environment}"
    assert sorted(client.scan_iter(f"{prefix}:*")) == sorted(
        f"{prefix}:{name}".encode()
        for name in ("document", "seq", "outbox", "entries", f"lease:{first.id}")
    )
    raw = json.loads(client.get(f"{prefix}:document") or b"")
    # The last update's token (how a commit whose answer was lost is recognised)
    # is kept in Redis and never shown to a reader.
    assert re.fullmatch(r"[0-9a-f]{32}", raw["meta"].pop("update"))
    assert raw == store.read()
    assert client.zrange(f"{prefix}:outbox", 0, -1, withscores=True) == [
        (first.id.encode(), first.seq),
        (second.id.encode(), second.seq),
    ]
    assert json.loads(client.hget(f"{prefix}:entries", first.id) or b"") == first.to_json()
    assert client.get(f"{prefix}:lease:{first.id}") == b"eu"
    assert 0 < client.pttl(f"{prefix}:lease:{first.id}") <= 30_000

    store.failed(first.id, owner="eu", error="HTTP 400", permanent=True, now=1.0)
    assert client.zrange(f"{prefix}:dead", 0, -1) == [first.id.encode()]
    assert not client.exists(f"{prefix}:lease:{first.id}")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{not json", "alert state is not valid JSON"),
        (b"\xff\xfe", "alert state is not valid JSON"),
        (b'{"schema": "other"}', f"not a {ALERTS_SCHEMA} document"),
    ],
)
def test_a_bad_redis_document_is_a_state_error(redis_url: str, raw: bytes, problem: str) -> None:
    environment = unique("staging")
    redis.Redis.from_url(redis_url).set(f"synthetic:alerts:{environment}:document", raw)
    store = RedisAlertStore(redis_url, environment, description="redis alert store")

    for operation in (store.read, lambda: store.update(open_incident("db"))):
        with pytest.raises(StateError) as info:
            operation()
        assert problem in str(info.value)
        assert "\n" not in str(info.value)
    assert store.outbox() == []


@pytest.mark.slow
def test_an_unreachable_redis_is_a_state_error_without_the_password(refused_port: int) -> None:
    url = f"redis://:s3cretpw@127.0.0.1:{refused_port}/0"
    store = open_alert_store(url, environment="production", results_dir=Path("unused"))
    operations: dict[str, Callable[[], Any]] = {
        "read": store.read,
        "update": lambda: store.update(open_incident("db")),
        "outbox": store.outbox,
        "dead_letters": store.dead_letters,
        "claim": lambda: store.claim("x", owner="eu", lease_s=30),
        "delivered": lambda: store.delivered("x", owner="eu"),
        "failed": lambda: store.failed("x", owner="eu", error="e", permanent=False, now=1.0),
    }

    def outcome(operation: Callable[[], Any]) -> tuple[str, float]:
        started = time.monotonic()
        try:
            operation()
        except StateError as exc:
            return str(exc), time.monotonic() - started
        return "no error", time.monotonic() - started

    # At once: each waits out the whole retry budget.
    with concurrent.futures.ThreadPoolExecutor(len(operations)) as pool:
        outcomes = dict(zip(operations, pool.map(outcome, operations.values()), strict=True))

    for name, (message, elapsed) in outcomes.items():
        assert message.startswith("redis alert store: cannot "), name
        assert "Connection refused" in message, name
        assert "s3cretpw" not in message, name
        assert "\n" not in message, name
        # Retried with backoff first (so a restart is ridden out), then given up.
        assert 1.0 < elapsed < 6.0, name


@pytest.mark.slow
def test_a_redis_restart_between_operations_loses_nothing(tmp_path: Path) -> None:
    with RedisServer(tmp_path, appendonly=True) as server:
        store = RedisAlertStore(server.url, "production", description="redis")
        store.update(open_incident("db"))
        server.restart()
        store.update(open_incident("cache"))  # on a connection the restart broke
        first, second = store.outbox()
        assert store.claim(first.id, owner="eu", lease_s=30)
        server.restart()
        assert not store.claim(first.id, owner="us", lease_s=30)  # the lease survived
        store.delivered(first.id, owner="eu")
        server.restart()

        assert store.outbox() == [second]
        assert sorted(store.read()["incidents"]) == ["cache", "db"]
        (third,) = store.update(open_incident("queue"))[1]
        assert third.seq > second.seq  # the counter survived too
        store.close()


@pytest.mark.slow
def test_updates_ride_out_a_redis_restart_under_way(tmp_path: Path) -> None:
    with RedisServer(tmp_path, appendonly=True) as server:
        store = RedisAlertStore(server.url, "production", description="redis")
        restarts = threading.Thread(target=lambda: [server.restart() for _ in range(3)])
        keys: list[str] = []

        restarts.start()
        try:
            # Until the restarts are over, and then some: every one falls amid updates.
            while restarts.is_alive() or len(keys) < 50:
                keys.append(f"incident-{len(keys)}")
                store.update(open_incident(keys[-1]))
                store.update(open_incident(keys[-1]))  # a retried decision changes nothing
        finally:
            restarts.join()  # before the server stops, also when an update failed

        assert sorted(keys_of(store.outbox())) == sorted(keys)
        assert sorted(store.read()["incidents"]) == sorted(keys)
        store.close()


# --- open_alert_store ------------------------------------------------------------------


def test_open_alert_store_defaults_to_a_file_per_environment(tmp_path: Path) -> None:
    store = open_alert_store(None, environment="staging", results_dir=tmp_path)

    assert isinstance(store, FileAlertStore)
    assert store.path == tmp_path / "alerts-staging.json"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("x/state.json", "x/state.alerts.json"), ("x/state", "x/state.alerts.json")],
)
def test_open_alert_store_next_to_a_state_file(spec: str, expected: str) -> None:
    store = open_alert_store(spec, environment="staging", results_dir=Path("unused"))

    assert isinstance(store, FileAlertStore)
    assert store.path == Path(expected)


@pytest.mark.parametrize(
    ("url", "description"), [("redis://cache:6379/0", None), ("rediss://:pw@cache/1", "alerts")]
)
def test_open_alert_store_with_a_redis_url(url: str, description: str | None) -> None:
    store = open_alert_store(
        url, environment="staging", results_dir=Path("unused"), describe=description
    )

    assert isinstance(store, RedisAlertStore)
    assert store.prefix == "synthetic:alerts:staging"
    assert store.description == (description or "redis alert store")


def test_open_alert_store_rejects_other_schemes() -> None:
    with pytest.raises(ConfigError, match="unsupported store 'etcd://'"):
        open_alert_store("etcd://x", environment="staging", results_dir=Path("unused"))


# --- OutboxEntry -----------------------------------------------------------------------


def test_an_outbox_entry_round_trips_through_json() -> None:
    entry = OutboxEntry("id1", 7, "slack", {"dedup_key": "db"}, 1.5, 2, "HTTP 503", 2.5)

    assert OutboxEntry.from_json(json.loads(json.dumps(entry.to_json()))) == entry


@pytest.mark.parametrize(
    "data", [{}, None, {"id": "x", "seq": 1, "receiver": "r", "alert": [], "created_at": 1.0}]
)
def test_a_bad_outbox_entry_is_a_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match="not an outbox entry"):
        OutboxEntry.from_json(data)


# --- RedisServer.restart -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("appendonly", [True, False])
def test_a_restarted_redis_keeps_its_port_and_with_appendonly_its_data(
    tmp_path: Path, appendonly: bool
) -> None:
    with RedisServer(tmp_path, appendonly=appendonly) as server:
        url, pid = server.url, server.pid
        redis.Redis.from_url(url).set("kept", "yes")

        server.restart()

        assert server.url == url
        assert server.pid != pid
        assert redis.Redis.from_url(url).get("kept") == (b"yes" if appendonly else None)
    assert not server.running


def test_a_stopped_redis_cannot_be_restarted(tmp_path: Path) -> None:
    with pytest.raises(RedisServerError, match="not running"):
        RedisServer(tmp_path).restart()
