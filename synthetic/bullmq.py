"""BullMQ queue sizes read straight from Redis, without changing anything.

BullMQ (5 and 6) keeps a queue in keys ``<prefix>:<queue>:<suffix>``: the
lists ``wait``, ``active`` and ``paused``; the sorted sets ``delayed``,
``prioritized``, ``completed``, ``failed`` and ``waiting-children``; the
hash ``meta`` (``paused=1`` while the queue is paused). Redis deletes an
empty list or set, so a missing key is a count of 0.

BullMQ's own ``getJobCounts`` runs a Lua script that may pop a legacy
marker off ``wait``: the monitor reads with plain LLEN / ZCARD instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from synthetic.errors import MeasurementError

if TYPE_CHECKING:
    import redis

LIST_STATES: Final = ("wait", "active", "paused")
SET_STATES: Final = ("delayed", "prioritized", "completed", "failed", "waiting-children")
WAITING_STATES: Final = ("wait", "paused", "prioritized")
"""The states whose jobs are ready to run and wait for a worker: the backlog."""


def job_counts(client: redis.Redis, prefix: str, queue: str) -> dict[str, int]:
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
    replies: list[Any] = pipe.execute(raise_on_error=False)

    for key, reply in zip(keys, replies, strict=True):
        if isinstance(reply, Exception):
            raise MeasurementError(f"BullMQ key {key}: {_first_line(reply)}")

    counts: dict[str, int] = {}
    for state, reply in zip((*LIST_STATES, *SET_STATES), replies, strict=False):
        if not isinstance(reply, int) or isinstance(reply, bool):
            raise MeasurementError(f"BullMQ key {base}:{state}: not a count: {reply!r}")
        counts[state] = reply
    counts["waiting"] = sum(counts[state] for state in WAITING_STATES)
    counts["is_paused"] = _truthy(replies[-1])
    return counts


def _truthy(flag: Any) -> bool:
    if isinstance(flag, bytes):
        flag = flag.decode("utf-8", "replace")
    return flag is not None and str(flag) not in ("", "0", "false")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
