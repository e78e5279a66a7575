"""A hard deadline for one delivery attempt, whatever it is blocked on.

A socket timeout bounds each read, not an answer: a receiver that drips its
status line, its headers or its body a byte at a time, or an SMTP server that
accepts the mail and then drips its replies, keeps every read short and the
whole attempt going for as long as it likes. `Cutoff` is the wall: the
sockets an attempt opens are registered with it (`watch`), and when its
deadline passes a timer shuts them down, which wakes a blocked ``recv`` or
``send`` with an error the attempt then reports::

    with Cutoff(2.5) as cutoff:
        sock = socket.create_connection(address, timeout=2.5)
        cutoff.watch(sock)
        ...  # talk; at 2.5 s any blocked call returns with an error
    if cutoff.fired:
        ...  # say the deadline passed, not "connection dropped"

It watches a duplicate of each socket's descriptor: a socket that is wrapped
in TLS afterwards (STARTTLS, ``start_tls``) is the same connection, so it is
still cut; the duplicates are closed on exit. The timer thread ends with the
block.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self


class Cutoff:
    """Shuts down the watched sockets ``seconds`` after the block starts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds)
        self.fired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self._timer.join()
        with self._lock:
            watched, self._watched = self._watched, []
        for duplicate in watched:
            duplicate.close()

    def watch(self, sock: socket.socket) -> None:
        """Cut ``sock`` at the deadline (at once when it has passed)."""
        try:
            duplicate = sock.dup()
        except OSError:
            return  # closed already: nothing left to cut
        with self._lock:
            self._watched.append(duplicate)
            fired = self.fired
        if fired:
            _shut(duplicate)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            watched = list(self._watched)
        for duplicate in watched:
            _shut(duplicate)


def _shut(sock: socket.socket) -> None:
    # shutdown, not close: it acts on the connection every descriptor shares,
    # and wakes the thread blocked on it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
