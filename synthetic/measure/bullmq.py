"""BullMQ queue sizes read straight from Redis, without changing anything.

BullMQ (5 and 6) keeps a queue in keys ``<prefix>:<queue>:<suffix>``: the
lists ``wait``, ``active`` and ``paused``; the sorted sets ``delayed``,
``prioritized``, ``completed``, ``failed`` and ``waiting-children``; the
hash ``meta`` (``paused=1`` while the queue is paused). Redis deletes an
empty list or set, so a missing key is a count of 0.

BullMQ's own ``getJobCounts`` runs a Lua script that may pop a legacy
marker off ``wait``: the monitor reads with plain LLEN / ZCARD instead.

A queue that is not there (a misspelt name, a wrong prefix) would read as
an empty queue, so `job_counts` tells them apart: every queue BullMQ made
has its ``meta`` hash (``Queue`` writes it when it starts), and one that
ever had a job has its ``id`` counter. Without either, and without jobs,
the queue does not exist, and the error lists the queues that do
(`find_queues`, a bounded SCAN).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from synthetic.errors import MeasurementError

if TYPE_CHECKING:
    import redis

LIST_STATES: Final = ("wait", "active", "paused")
SET_STATES: Final = ("delayed", "prioritized", "completed", "failed", "waiting-children")
WAITING_STATES: Final = ("wait", "paused", "prioritized")
"""The states whose jobs are ready to run and wait for a worker: the backlog."""

SCAN_MAX_KEYS: Final = 100_000
"""`find_queues` examines at most about this many keys (SCAN calls x COUNT)."""
SCAN_COUNT: Final = 1000
SHOWN_NAMES: Final = 10
SHOWN_PREFIXES: Final = 3
_META: Final = ":meta"


@dataclass(frozen=True)
class QueueListing:
    """The BullMQ queues a bounded scan found: sorted queue names by prefix."""

    queues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    complete: bool = True
    """The scan went through the whole keyspace (not stopped at its bound)."""
    examined: int = 0
    """Keys examined, about (SCAN calls x COUNT); meaningful when not complete."""
    total: int | None = None
    """The database's key count (DBSIZE), read when the scan stopped early."""
    error: str | None = None
    """Why the queues could not be listed (then ``queues`` is empty)."""


def find_queues(
    client: redis.Redis, *, max_keys: int = SCAN_MAX_KEYS, count: int = SCAN_COUNT
) -> QueueListing:
    """The queues in ``client``'s database: hashes named ``<prefix>:<queue>:meta``.

    ``SCAN MATCH *:meta TYPE hash`` with ``COUNT count``, at most
    ``ceil(max_keys / count)`` calls, so a huge keyspace is not walked to its
    end (the listing then says it is not complete). A queue name cannot hold
    a ``:`` (BullMQ refuses it); a prefix can (``app:bull``). A Redis error
    (an old server without ``SCAN ... TYPE``, a lost connection) is kept in
    ``error``: the listing is a hint, not the measurement.
    """
    import redis

    found: dict[str, set[str]] = {}
    cursor: Any = 0
    calls = 0
    try:
        while calls < max(1, math.ceil(max_keys / count)):
            cursor, keys = client.scan(cursor, match=f"*{_META}", count=count, _type="hash")
            calls += 1
            for key in keys:
                name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
                prefix, _, queue = name[: -len(_META)].rpartition(":")
                if prefix and queue:
                    found.setdefault(prefix, set()).add(queue)
            if int(cursor) == 0:
                return QueueListing(_sorted(found), complete=True, examined=calls * count)
        total = int(client.dbsize())
    except (redis.RedisError, UnicodeDecodeError) as exc:
        return QueueListing(error=_first_line(exc))
    return QueueListing(_sorted(found), complete=False, examined=calls * count, total=total)


def _sorted(found: Mapping[str, set[str]]) -> dict[str, tuple[str, ...]]:
    return {prefix: tuple(sorted(names)) for prefix, names in sorted(found.items())}


def missing_queue(prefix: str, queue: str, listing: QueueListing) -> str:
    """The one-line reason for a queue that does not exist, with the queues that do.

    ``no BullMQ queue 'emails' under prefix 'bull' (queues found: email, provisioning)``;
    with a wrong prefix, the prefixes that have queues (those holding a queue of
    that name first).
    """
    head = f"no BullMQ queue {_quoted(queue)} under prefix {_quoted(prefix)}"
    if listing.error is not None:
        return f"{head} (queues could not be listed: {listing.error})"
    cut = ""
    if not listing.complete:
        cut = f"; only about {listing.examined} of the database's {listing.total} keys were scanned"
    mine = listing.queues.get(prefix)
    if mine:
        return f"{head} (queues found: {_names(mine)}{cut})"
    others = sorted(listing.queues, key=lambda p: (queue not in listing.queues[p], p))
    if not others:
        return f"{head} (no BullMQ queue found in this Redis database{cut})"
    under = "; under ".join(
        f"{_quoted(p)}: {_names(listing.queues[p])}" for p in others[:SHOWN_PREFIXES]
    )
    more = others[SHOWN_PREFIXES:]
    rest = f"; and {len(more)} more prefixes" if more else ""
    return f"{head} (no queue under {_quoted(prefix)}; found under {under}{rest}{cut})"


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(_printable(n) for n in names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _quoted(text: str) -> str:
    return f"'{text}'" if text.isprintable() and "'" not in text else repr(text)


def _printable(text: str) -> str:
    return text if text.isprintable() and "," not in text else repr(text)


def job_counts(
    client: redis.Redis,
    prefix: str,
    queue: str,
    *,
    listing: Callable[[], QueueListing] | None = None,
) -> dict[str, int]:
    """The number of jobs in each state of BullMQ queue ``queue``, read-only.

    One non-transactional pipeline: LLEN of ``wait``, ``active``, ``paused``;
    ZCARD of ``delayed``, ``prioritized``, ``completed``, ``failed``,
    ``waiting-children``; HGET ``meta`` ``paused``. The result has a key per
    state and two derived ones:

    - ``waiting``: ``wait + paused + prioritized``, the jobs that are ready
      and waiting for a worker. BullMQ 6 keeps a paused queue's jobs in
      ``wait`` (and sets ``meta.paused``) where older versions moved them to
      the ``paused`` list: counting both gives the same backlog whichever
      version wrote the keys, and a paused queue's backlog still grows and
      still alerts. Prioritized jobs are waiting too, only ordered (BullMQ
      keeps them in their own set). ``delayed`` (not due yet) and
      ``waiting-children`` (blocked on other jobs) are not backlog.
    - ``is_paused``: ``meta.paused`` is set, as a bool (``paused`` is the
      legacy list's count).

    The same pipeline asks whether ``meta`` or ``id`` exists: a queue with
    neither and no jobs is not there, a `MeasurementError` (`missing_queue`)
    listing the queues found by ``listing()`` (default: `find_queues`; the
    checks share one listing per run and process).

    Connection errors propagate (the check is then ``unreachable``); a key
    of another type (WRONGTYPE) or any other error reply is a
    `MeasurementError` naming the key.
    """
    base = f"{prefix}:{queue}"
    pipe = client.pipeline(transaction=False)
    keys: list[str] = []
    for state in LIST_STATES:
        keys.append(f"{base}:{state}")
        pipe.llen(keys[-1])
    for state in SET_STATES:
        keys.append(f"{base}:{state}")
        pipe.zcard(keys[-1])
    keys.append(f"{base}:meta")
    pipe.hget(keys[-1], "paused")
    keys.append(f"{base}:meta or {base}:id")
    pipe.exists(f"{base}:meta", f"{base}:id")
    replies: list[Any] = pipe.execute(raise_on_error=False)

    for key, reply in zip(keys, replies, strict=True):
        if isinstance(reply, Exception):
            raise MeasurementError(f"BullMQ key {key}: {_first_line(reply)}")

    counts: dict[str, int] = {}
    for state, reply in zip((*LIST_STATES, *SET_STATES), replies, strict=False):
        if not isinstance(reply, int) or isinstance(reply, bool):
            raise MeasurementError(f"BullMQ key {base}:{state}: not a count: {reply!r}")
        counts[state] = reply
    if not replies[-1] and not any(counts.values()):
        found = listing() if listing is not None else find_queues(client)
        raise MeasurementError(missing_queue(prefix, queue, found))
    counts["waiting"] = sum(counts[state] for state in WAITING_STATES)
    counts["is_paused"] = _truthy(replies[-2])
    return counts


def _truthy(flag: Any) -> bool:
    if isinstance(flag, bytes):
        flag = flag.decode("utf-8", "replace")
    return flag is not None and str(flag) not in ("", "0", "false")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
