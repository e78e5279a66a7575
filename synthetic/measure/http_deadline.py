"""A total deadline for each HTTP request: connect, headers and body together.

httpx's timeouts bound each socket operation, not a response: a body
dripping a byte a second, headers sent a byte at a time or a chunked body
that never ends keep every read short and the response endless. Inside
`deadline_scope`, every socket operation of the thread waits at most
``min(its own timeout, the time left)``, and once the time is spent the next
one raises httpx's timeout error at once, naming the deadline.

The deadline belongs to the thread (each request of the p95 burst runs in a
thread of its own), and the sockets are wrapped where httpcore makes them, so
a connection reused from the pool is bounded the same way.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = ["Deadline", "bound_sockets", "deadline_scope"]


@dataclass(frozen=True)
class Deadline:
    """A point in `time.monotonic` time, the length it was set for and what set it
    (for messages)."""

    seconds: float
    ends: float
    source: str = "timeout_s"

    @classmethod
    def after(cls, seconds: float, *, source: str = "timeout_s") -> Deadline:
        seconds = max(seconds, 0.0)
        return cls(seconds, time.monotonic() + seconds, source)

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def message(self) -> str:
        return f"no complete answer within the deadline of {self.seconds:.3g} s ({self.source})"


_current = threading.local()


@contextlib.contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Bound every socket operation of this thread by ``deadline`` until the block ends."""
    previous = getattr(_current, "deadline", None)
    _current.deadline = deadline
    try:
        yield deadline
    finally:
        _current.deadline = previous


def current_deadline() -> Deadline | None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    return deadline


def _clamp(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` cut to the time left; the timeout error when none is left."""
    deadline = current_deadline()
    if deadline is None:
        return timeout
    left = deadline.remaining()
    if left <= 0:
        raise error(deadline.message())
    return left if timeout is None else min(timeout, left)


@contextlib.contextmanager
def _named(error: type[httpcore.TimeoutException]) -> Iterator[None]:
    # A wait cut short by the deadline says so, rather than socket's "timed out".
    try:
        yield
    except httpcore.TimeoutException:
        deadline = current_deadline()
        if deadline is not None and deadline.expired:
            raise error(deadline.message()) from None
        raise


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _named(httpcore.ReadTimeout):
            return self._stream.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _named(httpcore.WriteTimeout):
            self._stream.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        with _named(httpcore.ConnectTimeout):
            tls = self._stream.start_tls(
                ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
            )
        return _BoundedStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        with _named(httpcore.ConnectTimeout):
            stream = self._backend.connect_tcp(
                host,
                port,
                _clamp(timeout, httpcore.ConnectTimeout),
                local_address,
                socket_options,
            )
        return _BoundedStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        with _named(httpcore.ConnectTimeout):
            stream = self._backend.connect_unix_socket(
                path, _clamp(timeout, httpcore.ConnectTimeout), socket_options
            )
        return _BoundedStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_sockets(client: httpx.Client) -> httpx.Client:
    """Make every socket ``client`` opens obey the thread's `deadline_scope`.

    httpx has no public way to give its connection pool a network backend:
    this wraps the one of each transport's httpcore pool (the default
    transport and those mounted for proxies). Should a future httpx move
    them, it fails here, at once, rather than leave requests unbounded.
    """
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        if transport is None:
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if not isinstance(backend, httpcore.NetworkBackend):
            raise RuntimeError(
                f"cannot bound the sockets of {type(transport).__name__}: httpx or httpcore "
                "changed where a transport keeps its network backend"
            )
        if not isinstance(backend, _BoundedBackend):
            pool._network_backend = _BoundedBackend(backend)  # type: ignore[union-attr]
    return client
