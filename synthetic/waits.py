"""What the check running in this process is waiting on, if anything.

A check stopped at its time limit while a call to its target was in flight
was let down by the target: it is unreachable. Stopped anywhere else, it ran
past its deadline on its own (a loop, a slow parse): UNKNOWN. The HTTP client
and the Redis and PostgreSQL fixtures enter `waiting_on` around each call to
the target; the stop (`synthetic.stop`) asks `current` at the moment it fires.

Process-wide on purpose, not in a pytest stash: a check's own threads (the
p95 burst) wait for it too, and the status a worker shows the controller's
watchdog is written from here (`listen`). Each wait is tagged with the check
that was running when it began, so a thread a previous check left behind
does not speak for the next one.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("http", "redis", "postgres")


@dataclass(frozen=True)
class Wait:
    """One call to the target in flight: ``kind`` is its client family."""

    kind: str
    what: str  # "GET /health", "redis", "postgres": what did not answer
    check: str | None  # the node id of the check it was made for


class _Registry:
    """The calls in flight in this process, and the check they are for."""

    def __init__(self) -> None:
        # Re-entrant: the stop's signal handler asks `current` in the main thread,
        # which may be inside `waiting_on` holding it.
        self.lock = threading.RLock()
        self.active: dict[int, Wait] = {}
        self.numbers = itertools.count()
        self.check: str | None = None
        self.listener: Callable[[], None] | None = None

    def changed(self) -> None:
        if self.listener is not None:
            self.listener()


_registry = _Registry()


@contextlib.contextmanager
def waiting_on(kind: str, what: str) -> Iterator[None]:
    """Mark the block as waiting on the target (``kind`` one of `KINDS`)."""
    number = next(_registry.numbers)
    with _registry.lock:
        _registry.active[number] = Wait(kind, _plain(what), _registry.check)
    _registry.changed()
    try:
        yield
    finally:
        with _registry.lock:
            del _registry.active[number]
        _registry.changed()


def current() -> Wait | None:
    """The oldest call in flight for the running check, if any."""
    with _registry.lock:
        for _, wait in sorted(_registry.active.items()):
            if wait.check == _registry.check:
                return wait
    return None


def running(check: str | None) -> None:
    """The check (node id) that runs from now on; None between checks."""
    with _registry.lock:
        _registry.check = check


def listen(callback: Callable[[], None] | None) -> None:
    """Call ``callback`` (no arguments) after each change; None stops it."""
    _registry.listener = callback


def _plain(what: str) -> str:
    """``what`` without the query and user info of a URL in it: no token travels."""
    method, _, url = what.partition(" ")
    if not url:
        return what
    parts = urlsplit(url)
    if parts.scheme and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        url = f"{parts.scheme}://{parts.hostname}{port}{parts.path}"
    else:
        url = parts.path
    return f"{method} {url}"
