"""A target that never answers, for tests of time limits and blame."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from synthetic.sandbox.processes import LOOPBACK


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers on them.

    The socket listens and is never read: the kernel completes each client's
    handshake into the backlog, so a client connects, sends its request and
    then waits for an answer that does not come, as long as the block runs.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(128)
        yield sock.getsockname()[1]
