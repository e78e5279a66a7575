"""The alert store: incident state and the outbox, shared by every runner of an environment.

A stateless scheduler runs the checks every few minutes, from several places
at once (regions; a scheduled run overlapping a deploy-gate run). Together
they must decide exactly one trigger and one resolve per incident, send
each once (again only when its outcome is unknown) and lose nothing they
could not deliver. So a decision and what it asks to send are
written together, atomically (`AlertStore.update`), and sending happens
afterwards from the outbox, oldest first, one runner per entry at a time
(`AlertStore.claim`, a lease that expires when its runner dies). Right
before its request goes out, an entry is marked as being sent and its lease
renewed (`AlertStore.begin`); the outcome removes the entry or clears the
mark. An entry found still marked had an attempt whose outcome nobody
recorded (its runner died, or the store was away for longer than the runner
kept trying): the receiver may have it already.

Backed by a file (single runner, the default; ``flock`` between processes of
one machine) or by Redis (many runners; WATCH/MULTI/EXEC and SET NX PX).

Document layout (``synthetic.alerts/v1``)::

    {"schema": "synthetic.alerts/v1", "incidents": {...}, "silences": [...], "meta": {...}}
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from synthetic.errors import ConfigError, StateError
from synthetic.files import flock_within, read_json_file, write_json_file
from synthetic.redis_document import REDIS_RETRIES, RedisDocument

if TYPE_CHECKING:
    import redis

T = TypeVar("T")

ALERTS_SCHEMA = "synthetic.alerts/v1"
# Optimistic updates give way to the runner that wrote first; with a handful
# of runners a few attempts do, the bound only stops a runaway.
UPDATE_ATTEMPTS = 50
LOCK_TIMEOUT_S = 10.0


def empty_document() -> dict[str, Any]:
    return {"schema": ALERTS_SCHEMA, "incidents": {}, "silences": [], "meta": {}}


@dataclass(frozen=True)
class NewEntry:
    """What a decision asks to send: an alert for one receiver."""

    receiver: str
    alert: dict[str, Any]  # Alert.to_json()


@dataclass(frozen=True)
class OutboxEntry:
    """An alert waiting for delivery; ``seq`` orders all entries of an environment."""

    id: str
    seq: int
    receiver: str
    alert: dict[str, Any]
    created_at: float
    attempts: int = 0
    last_error: str | None = None
    last_attempt_at: float | None = None
    # Set by `AlertStore.begin` (epoch seconds, the runner), cleared by a
    # recorded failure: still set when an entry is claimed again, an earlier
    # attempt's outcome is unknown.
    sending_at: float | None = None
    sending_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> OutboxEntry:
        """Raises ValueError when ``data`` is not an entry."""
        try:
            if not isinstance(data["alert"], dict):
                raise TypeError("'alert' is not an object")
            entry = cls(
                id=str(data["id"]),
                seq=int(data["seq"]),
                receiver=str(data["receiver"]),
                alert=dict(data["alert"]),
                created_at=float(data["created_at"]),
                attempts=int(data.get("attempts", 0)),
                last_error=_optional(str, data.get("last_error")),
                last_attempt_at=_optional(float, data.get("last_attempt_at")),
                sending_at=_optional(float, data.get("sending_at")),
                sending_by=_optional(str, data.get("sending_by")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not an outbox entry ({type(exc).__name__}: {exc})") from None
        return entry

    def after_failure(self, error: str, now: float) -> OutboxEntry:
        return replace(
            self,
            attempts=self.attempts + 1,
            last_error=error,
            last_attempt_at=now,
            sending_at=None,
            sending_by=None,
        )

    def being_sent(self, owner: str, now: float) -> OutboxEntry:
        return replace(self, sending_at=now, sending_by=owner)


def _optional(kind: Callable[[Any], T], value: Any) -> T | None:
    return None if value is None else kind(value)


Change = Callable[[dict[str, Any]], tuple[dict[str, Any], Sequence[NewEntry]]]


class AlertStore(Protocol):
    description: str

    def read(self) -> dict[str, Any]:
        """The document; `empty_document` when there is none yet."""
        ...

    def update(
        self, change: Change, *, now: float | None = None
    ) -> tuple[dict[str, Any], list[OutboxEntry]]:
        """Apply ``change`` and enqueue what it asks to send, together or not at all.

        ``change`` gets a copy of the document and returns the new one and
        the entries to send; it must be pure, since it runs again on the
        fresh document when another runner wrote in between. Returns what
        was written.
        """
        ...

    def outbox(self) -> list[OutboxEntry]:
        """Entries waiting for delivery, oldest (lowest ``seq``) first."""
        ...

    def claim(self, entry_id: str, *, owner: str, lease_s: float) -> bool:
        """Hold an entry for ``lease_s`` to deliver it; False if held or gone."""
        ...

    def begin(self, entry_id: str, *, owner: str, lease_s: float, now: float) -> OutboxEntry | None:
        """Mark an entry as being sent at ``now`` and hold it ``lease_s`` from now.

        Returns the entry as it was (a ``sending_at`` there means an earlier
        attempt's outcome is unknown), or None when another runner holds it
        or it is gone: then it must not be sent.
        """
        ...

    def delivered(self, entry_id: str, *, owner: str) -> None:
        """Remove a delivered entry and release its lease."""
        ...

    def failed(self, entry_id: str, *, owner: str, error: str, permanent: bool, now: float) -> None:
        """Count a failed attempt and release the lease; a permanent failure is a dead letter."""
        ...

    def dead_letters(self) -> list[OutboxEntry]:
        """Entries that failed permanently, oldest first."""
        ...

    def prune_dead(self, *, keep: int) -> int:
        """Forget all but the newest ``keep`` dead letters; how many were forgotten."""
        ...

    def close(self) -> None: ...


def _new_entries(
    entries: Sequence[NewEntry], first_seq: int, now: float | None
) -> list[OutboxEntry]:
    created_at = time.time() if now is None else now
    return [
        OutboxEntry(uuid.uuid4().hex, first_seq + n, new.receiver, dict(new.alert), created_at)
        for n, new in enumerate(entries)
    ]


def _changed(
    change: Change, document: dict[str, Any], where: str
) -> tuple[dict[str, Any], list[NewEntry]]:
    new_document, entries = change(copy.deepcopy(document))
    return _checked(new_document, f"{where}: the change returned"), list(entries)


def _checked(document: Any, where: str) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("schema") != ALERTS_SCHEMA:
        raise StateError(f"{where}: not a {ALERTS_SCHEMA} document")
    for name, kind in (("incidents", dict), ("silences", list), ("meta", dict)):
        document.setdefault(name, kind())
        _check_shape(document, name, kind, where)
    return document


def _check_shape(data: dict[str, Any], name: str, kind: type, where: str) -> None:
    if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
        json_name = {dict: "an object", list: "an array", int: "an integer"}[kind]
        raise StateError(f"{where}: '{name}' is not {json_name}")


def _pause(attempt: int) -> None:
    # Jittered, so runners that collided do not collide again in step.
    time.sleep(random.uniform(0.0, min(0.05, 0.002 * 2**attempt)))


# --- the file store ----------------------------------------------------------------


class FileAlertStore:
    """One JSON file: ``{"schema", "document", "outbox", "dead", "seq", "leases"}``.

    Every operation holds ``flock`` on a sidecar ``<name>.lock`` (the data
    file itself is replaced on each write, so it cannot carry the lock) and
    writes with `write_json_atomic`, so processes of one machine take turns
    and a crash leaves the old file or the new one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        self._lock_path = path.with_name(f"{path.name}.lock")

    def read(self) -> dict[str, Any]:
        with self._locked() as data:
            document: dict[str, Any] = data["document"]
            return document

    def update(
        self, change: Change, *, now: float | None = None
    ) -> tuple[dict[str, Any], list[OutboxEntry]]:
        with self._locked() as data:
            document, new = _changed(change, data["document"], self.description)
            entries = _new_entries(new, data["seq"] + 1, now)
            data["document"] = document
            data["outbox"] += [entry.to_json() for entry in entries]
            data["seq"] += len(entries)
            self._write(data)
        return document, entries

    def outbox(self) -> list[OutboxEntry]:
        with self._locked() as data:
            return _entries(data["outbox"])

    def dead_letters(self) -> list[OutboxEntry]:
        with self._locked() as data:
            return _entries(data["dead"])

    def prune_dead(self, *, keep: int) -> int:
        with self._locked() as data:
            dead = sorted(data["dead"], key=lambda raw: int(raw["seq"]))
            excess = max(0, len(dead) - keep)
            if excess:
                data["dead"] = dead[excess:]
                self._write(data)
            return excess

    def claim(self, entry_id: str, *, owner: str, lease_s: float) -> bool:
        with self._locked() as data:
            if _find(data["outbox"], entry_id) is None:
                return False
            now = time.time()
            lease = data["leases"].get(entry_id)
            if lease is not None and lease["owner"] != owner and lease["until"] > now:
                return False
            data["leases"][entry_id] = {"owner": owner, "until": now + lease_s}
            self._write(data)
            return True

    def begin(self, entry_id: str, *, owner: str, lease_s: float, now: float) -> OutboxEntry | None:
        with self._locked() as data:
            index = _find(data["outbox"], entry_id)
            lease = data["leases"].get(entry_id)
            held = lease is not None and lease["owner"] != owner and lease["until"] > time.time()
            if index is None or held:
                return None
            entry = OutboxEntry.from_json(data["outbox"][index])
            data["outbox"][index] = entry.being_sent(owner, now).to_json()
            data["leases"][entry_id] = {"owner": owner, "until": time.time() + lease_s}
            self._write(data)
            return entry

    def delivered(self, entry_id: str, *, owner: str) -> None:
        with self._locked() as data:
            index = _find(data["outbox"], entry_id)
            if index is not None:
                del data["outbox"][index]
            _release(data["leases"], entry_id, owner, gone=True)
            self._write(data)

    def failed(self, entry_id: str, *, owner: str, error: str, permanent: bool, now: float) -> None:
        with self._locked() as data:
            index = _find(data["outbox"], entry_id)
            if index is not None:
                entry = OutboxEntry.from_json(data["outbox"][index]).after_failure(error, now)
                if permanent:
                    del data["outbox"][index]
                    data["dead"].append(entry.to_json())
                else:
                    data["outbox"][index] = entry.to_json()
            _release(data["leases"], entry_id, owner, gone=index is None or permanent)
            self._write(data)

    def close(self) -> None:
        """Nothing to close: the lock is taken and released by each operation."""

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._lock_path.open("a")
        except OSError as exc:
            raise StateError(f"{self._lock_path}: cannot open lock: {exc.strerror}") from None
        with handle:
            self._lock(handle.fileno())
            # Read under the lock: a bad file is moved aside by one process only.
            yield self._load()

    def _lock(self, fd: int) -> None:
        try:
            locked = flock_within(fd, LOCK_TIMEOUT_S)
        except OSError as exc:
            raise StateError(f"{self._lock_path}: cannot lock: {exc.strerror}") from None
        if not locked:
            raise StateError(
                f"{self._lock_path}: still locked by another process after {LOCK_TIMEOUT_S:g} s"
            )

    def _load(self) -> dict[str, Any]:
        return read_json_file(self.path, what="alert state", check=_checked_file, empty=_empty_file)

    def _write(self, data: dict[str, Any]) -> None:
        write_json_file(self.path, data, what="alert state")


def _empty_file() -> dict[str, Any]:
    return {
        "schema": ALERTS_SCHEMA,
        "document": empty_document(),
        "outbox": [],
        "dead": [],
        "seq": 0,
        "leases": {},
    }


def _checked_file(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("schema") != ALERTS_SCHEMA:
        raise StateError(f"{where}: not a {ALERTS_SCHEMA} file")
    _checked(data.get("document"), where)
    for name, kind in (("outbox", list), ("dead", list), ("seq", int), ("leases", dict)):
        _check_shape(data, name, kind, where)
    try:
        for raw in data["outbox"] + data["dead"]:
            OutboxEntry.from_json(raw)
    except ValueError as exc:
        raise StateError(f"{where}: {exc}") from None
    return data


def _entries(raws: list[Any]) -> list[OutboxEntry]:
    return sorted((OutboxEntry.from_json(raw) for raw in raws), key=lambda entry: entry.seq)


def _find(raws: list[dict[str, Any]], entry_id: str) -> int | None:
    return next((n for n, raw in enumerate(raws) if raw["id"] == entry_id), None)


def _release(leases: dict[str, Any], entry_id: str, owner: str, *, gone: bool) -> None:
    # Never take away another runner's lease; a lease on an entry that is gone is useless.
    lease = leases.get(entry_id)
    if lease is not None and (gone or lease["owner"] == owner):
        del leases[entry_id]


# --- the Redis store ---------------------------------------------------------------


class RedisAlertStore:
    """Keys under ``synthetic:alerts:<environment>``.

    ``:document`` the document (a JSON string); ``:seq`` the counter that
    orders entries; ``:outbox`` a sorted set of pending ids scored by seq;
    ``:dead`` the same for dead letters; ``:entries`` a hash id -> entry
    JSON (pending and dead); ``:lease:<id>`` the holder of an entry (SET NX PX).
    """

    def __init__(self, url: str, environment: str, *, description: str) -> None:
        import redis  # loaded only when a Redis store is configured

        self.description = description
        self.prefix = f"synthetic:alerts:{environment}"
        self._document = f"{self.prefix}:document"
        self._seq = f"{self.prefix}:seq"
        self._outbox = f"{self.prefix}:outbox"
        self._dead = f"{self.prefix}:dead"
        self._entries = f"{self.prefix}:entries"
        self._doc = RedisDocument(
            url,
            self._document,
            description=description,
            what="alert state",
            empty=empty_document,
            check=_checked,
            retries=REDIS_RETRIES,  # a Redis restart is ridden out: nothing is lost
        )
        self._client = self._doc.client
        self._watch_error: type[Exception] = redis.WatchError

    def lease_key(self, entry_id: str) -> str:
        return f"{self.prefix}:lease:{entry_id}"

    def read(self) -> dict[str, Any]:
        with self._failing_as("read alerts"):
            document = self._parse_document(self._client.get(self._document))
        _pop_token(document)
        return document

    def update(
        self, change: Change, *, now: float | None = None
    ) -> tuple[dict[str, Any], list[OutboxEntry]]:
        # Every update writes the document, so WATCHing it alone orders all updates.
        # Each update also writes its own token into the document: when the
        # connection drops after EXEC was sent, redis-py cannot tell a commit
        # from a conflict, and the token says whether this update is already in
        # (so `change` is never applied twice).
        token = uuid.uuid4().hex
        done: list[tuple[dict[str, Any], list[OutboxEntry]]] = []

        def body(pipe: redis.client.Pipeline) -> tuple[dict[str, Any], list[OutboxEntry]]:
            current = self._parse_document(pipe.get(self._document))
            if done and _pop_token(current) == token:
                pipe.multi()  # committed before the answer was lost: nothing to write
                return done[-1]
            done[:] = [self._try_update(pipe, current, change, now, token)]
            return done[-1]

        with self._failing_as("update alerts"):
            return self._in_transaction([self._document], body)

    def _try_update(
        self,
        pipe: redis.client.Pipeline,
        current: dict[str, Any],
        change: Change,
        now: float | None,
        token: str,
    ) -> tuple[dict[str, Any], list[OutboxEntry]]:
        _pop_token(current)
        document, new = _changed(change, current, self.description)
        stored = {**document, "meta": {**document.get("meta", {}), _TOKEN: token}}
        # Reserved after WATCH and before EXEC: a later commit reserved later,
        # so committed order is seq order. A failed EXEC leaves a gap, harmlessly.
        last = int(pipe.incrby(self._seq, len(new))) if new else 0
        entries = _new_entries(new, last - len(new) + 1, now)
        pipe.multi()
        pipe.set(self._document, json.dumps(stored, sort_keys=True))
        for entry in entries:
            pipe.hset(self._entries, entry.id, json.dumps(entry.to_json(), sort_keys=True))
            pipe.zadd(self._outbox, {entry.id: entry.seq})
        return document, entries

    def outbox(self) -> list[OutboxEntry]:
        return self._listed(self._outbox, "read the outbox")

    def dead_letters(self) -> list[OutboxEntry]:
        return self._listed(self._dead, "read dead letters")

    def prune_dead(self, *, keep: int) -> int:
        def body(pipe: redis.client.Pipeline) -> int:
            # Ranked by seq, oldest first: all but the last ``keep``.
            ids = cast("list[bytes]", pipe.zrange(self._dead, 0, -keep - 1))
            pipe.multi()
            if ids:
                pipe.zrem(self._dead, *ids)
                pipe.hdel(self._entries, *ids)
            return len(ids)

        with self._failing_as("forget old dead letters"):
            return self._in_transaction([self._dead], body)

    def claim(self, entry_id: str, *, owner: str, lease_s: float) -> bool:
        lease = self.lease_key(entry_id)
        px = max(1, round(lease_s * 1000))
        with self._failing_as("claim an alert"):
            # A SET whose reply was lost is retried and finds the lease ours: renewed.
            taken = bool(self._client.set(lease, owner, nx=True, px=px)) or self._in_transaction(
                [lease], lambda pipe: _renew_if_ours(pipe, lease, owner, px)
            )
            if not taken:
                return False
            # Checked after taking the lease: an entry delivered before that is
            # seen as gone here, so it is never sent twice.
            if self._client.zscore(self._outbox, entry_id) is None:
                self._in_transaction([lease], lambda pipe: _delete_if_ours(pipe, lease, owner))
                return False
            return True

    def begin(self, entry_id: str, *, owner: str, lease_s: float, now: float) -> OutboxEntry | None:
        lease = self.lease_key(entry_id)
        px = max(1, round(lease_s * 1000))
        done: list[OutboxEntry | None] = []

        def body(pipe: redis.client.Pipeline) -> OutboxEntry | None:
            holder = pipe.get(lease)
            pending = pipe.zscore(self._outbox, entry_id) is not None
            raw = pipe.hget(self._entries, entry_id) if pending else None
            pipe.multi()
            entry = None if raw is None else self._parse_entry(raw)
            if done and entry is not None and entry.being_sent(owner, now) == entry:
                return done[-1]  # committed before the answer was lost (as in `update`)
            if entry is None or (holder is not None and holder != owner.encode()):
                done[:] = [None]
                return None
            pipe.set(lease, owner, px=px)
            marked = entry.being_sent(owner, now)
            pipe.hset(self._entries, entry_id, json.dumps(marked.to_json(), sort_keys=True))
            done[:] = [entry]
            return entry

        with self._failing_as("mark an alert as being sent"):
            return self._in_transaction([self._entries, lease], body)

    def delivered(self, entry_id: str, *, owner: str) -> None:
        with self._failing_as("remove a delivered alert"):
            self._in_transaction(
                [self.lease_key(entry_id)],
                lambda pipe: self._remove(pipe, entry_id, owner),
            )

    def _remove(self, pipe: redis.client.Pipeline, entry_id: str, owner: str) -> None:
        lease = self.lease_key(entry_id)
        ours = pipe.get(lease) == owner.encode()
        pipe.multi()
        pipe.zrem(self._outbox, entry_id)
        pipe.hdel(self._entries, entry_id)
        if ours:
            pipe.delete(lease)

    def failed(self, entry_id: str, *, owner: str, error: str, permanent: bool, now: float) -> None:
        with self._failing_as("record a failed delivery"):
            self._in_transaction(
                [self._entries, self.lease_key(entry_id)],
                lambda pipe: self._record_failure(pipe, entry_id, owner, error, permanent, now),
            )

    def _record_failure(
        self,
        pipe: redis.client.Pipeline,
        entry_id: str,
        owner: str,
        error: str,
        permanent: bool,
        now: float,
    ) -> None:
        lease = self.lease_key(entry_id)
        ours = pipe.get(lease) == owner.encode()
        pending = pipe.zscore(self._outbox, entry_id) is not None
        raw = pipe.hget(self._entries, entry_id) if pending else None
        pipe.multi()
        if ours:
            pipe.delete(lease)
        if raw is None:  # delivered or dead already
            return
        entry = self._parse_entry(raw).after_failure(error, now)
        pipe.hset(self._entries, entry_id, json.dumps(entry.to_json(), sort_keys=True))
        if permanent:
            pipe.zrem(self._outbox, entry_id)
            pipe.zadd(self._dead, {entry_id: entry.seq})

    def close(self) -> None:
        self._client.close()

    def _in_transaction(self, watch: list[str], body: Callable[[redis.client.Pipeline], T]) -> T:
        """WATCH, let ``body`` read, MULTI and write, EXEC; all again on a conflict.

        A conflict is another runner writing a watched key first, or the
        connection dropping while watching (a Redis restart): ``body`` then
        decides again on what is there now.
        """
        for attempt in range(UPDATE_ATTEMPTS):
            with self._client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*watch)  # type: ignore[no-untyped-call]
                    result = body(pipe)
                    pipe.execute()
                    return result
                except self._watch_error:
                    pass
            _pause(attempt)
        raise StateError(
            f"{self.description}: other runners kept changing the alerts; "
            f"gave up after {UPDATE_ATTEMPTS} attempts"
        )

    def _listed(self, index: str, doing: str) -> list[OutboxEntry]:
        with self._failing_as(doing):
            ids = cast("list[bytes]", self._client.zrange(index, 0, -1))
            raws = self._client.hmget(self._entries, ids) if ids else []
        # An id whose entry is gone was delivered in between: not pending any more.
        entries = [self._parse_entry(raw) for raw in raws if raw is not None]
        return sorted(entries, key=lambda entry: entry.seq)

    def _parse_document(self, raw: bytes | str | None) -> dict[str, Any]:
        return self._doc.parse(raw)

    def _parse_entry(self, raw: bytes | str) -> OutboxEntry:
        try:
            return OutboxEntry.from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            raise StateError(f"{self.description} key {self._entries}: {exc}") from None

    def _failing_as(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return self._doc.failing_as(doing)


def _delete_if_ours(pipe: redis.client.Pipeline, lease: str, owner: str) -> None:
    ours = pipe.get(lease) == owner.encode()
    pipe.multi()
    if ours:
        pipe.delete(lease)


def _renew_if_ours(pipe: redis.client.Pipeline, lease: str, owner: str, px: int) -> bool:
    ours = pipe.get(lease) == owner.encode()
    pipe.multi()
    if ours:
        pipe.pexpire(lease, px)
    return ours


_TOKEN = "update"


def _pop_token(document: dict[str, Any]) -> str | None:
    """Take the last update's token out of a document read from Redis."""
    meta = document.get("meta")
    token = meta.pop(_TOKEN, None) if isinstance(meta, dict) else None
    return token if isinstance(token, str) else None


def open_alert_store(
    spec: str | None, *, environment: str, results_dir: Path, describe: str | None = None
) -> AlertStore:
    """The alert store next to the samples store that ``spec`` names (see `synthetic.state`).

    ``None``: ``alerts-<environment>.json`` in the results dir; a ``redis://``
    URL: Redis; a path ``x/state.json``: ``x/state.alerts.json``.
    """
    if spec is None:
        return FileAlertStore(results_dir / f"alerts-{environment}.json")
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisAlertStore(spec, environment, description=describe or "redis alert store")
    if "://" in spec:
        raise ConfigError(
            f"state: unsupported store '{spec.split('://')[0]}://' (use a path or redis://)"
        )
    return FileAlertStore(Path(spec).with_suffix(".alerts.json"))
