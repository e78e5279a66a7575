"""Reading a response body within bounds: its size, its decompressed size, its deadline.

The body is streamed raw and decompressed here, a bounded piece at a time
(httpx's own decoders expand a whole chunk at once: a 64 KB piece of a gzip
bomb becomes 64 MB). A body over ``max_body_bytes`` (announced by its
Content-Length, or met while reading, compressed or not), or compressed
more than `MAX_COMPRESSION_RATIO` times, stops the reading: the target
answered with more than the monitor reads, `ResponseRejected`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpx

from synthetic.errors import MeasurementError, ResponseRejected
from synthetic.limits import DEFAULT_MAX_BODY_BYTES, MAX_COMPRESSION_RATIO, RATIO_FREE_BYTES
from synthetic.measure.http_deadline import Deadline
from synthetic.text import printable

__all__ = ["ACCEPT_ENCODING", "BodyLimits", "read_body"]

ACCEPT_ENCODING = "gzip, deflate"
"""What the monitor asks for: the encodings it can decompress within bounds."""


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_ratio: int = MAX_COMPRESSION_RATIO


class _TooLarge(Exception):
    """A decoder's output would pass its room."""


_PIECE = 256 * 1024
"""The most one decompression step makes at once: what a chunk of a bomb can cost."""


class _Inflate:
    """zlib, gzip or raw deflate, decompressed a bounded piece at a time."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        gzip = encoding in ("gzip", "x-gzip")
        self._wbits = zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS
        self._object = zlib.decompressobj(self._wbits)
        self._started = False
        self._total = 0

    def stream(self, source: Iterable[bytes], room: int) -> Iterator[bytes]:
        """The output for ``source``, pieces of at most `_PIECE`; `_TooLarge` as soon as
        the whole would be more than ``room``."""
        for data in source:
            yield from self._feed(data, room)

    def _feed(self, data: bytes, room: int) -> Iterator[bytes]:
        pending = data
        while True:
            out = self._decompress(pending)
            self._total += len(out)
            if self._total > room:
                raise _TooLarge
            if out:
                yield out
            if self._object.eof:
                pending = self._object.unused_data
                if not pending:
                    return
                # Concatenated gzip members: each starts a decompressor of its own.
                self._object = zlib.decompressobj(self._wbits)
            else:
                pending = self._object.unconsumed_tail
                if not pending and len(out) < _PIECE:
                    return

    def _decompress(self, data: bytes) -> bytes:
        try:
            out = self._object.decompress(data, _PIECE)
        except zlib.error:
            if self._started or self.encoding != "deflate":
                raise
            # "deflate" is zlib-wrapped by the standard, raw by some servers.
            self._wbits = -zlib.MAX_WBITS
            self._object = zlib.decompressobj(self._wbits)
            out = self._object.decompress(data, _PIECE)
        self._started = True
        return out


def _decoders(header: str, where: str) -> list[_Inflate]:
    """The decoders for a Content-Encoding, in the order to apply them (the last
    encoding applied is undone first)."""
    decoders = []
    for raw in reversed(header.split(",")):
        encoding = raw.strip().lower()
        if encoding in ("", "identity"):
            continue
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise MeasurementError(
                f"{where} answered with Content-Encoding '{printable(encoding, 40)}', "
                f"which the monitor does not read (it asks for {ACCEPT_ENCODING})"
            )
        decoders.append(_Inflate(encoding))
    return decoders


def read_body(
    response: httpx.Response,
    limits: BodyLimits,
    *,
    deadline: Deadline,
    where: str,
    keep: bool = True,
) -> bytes:
    """The decoded body of a ``response`` sent with ``stream=True``; it is closed after.

    ``keep=False`` reads the body (within the same bounds) and keeps none of it:
    b"" (a timed request needs its status, not megabytes of its body).
    `ResponseRejected` when the body is over a cap, `MeasurementError` when its
    encoding is unknown or does not decode, httpx's `ReadTimeout` when the
    deadline passes first (the socket reads are bounded by it too).
    """
    cap = limits.max_bytes
    try:
        declared = _content_length(response)
        if declared is not None and declared > cap:
            raise _too_large(where, f"Content-Length {declared} is over", cap)
        decoders = _decoders(response.headers.get("content-encoding", ""), where)
        received = [0]
        pieces = _decoded(_raw(response, deadline, received, cap, where), decoders, cap, where)
        body = bytearray()
        size = 0
        try:
            for piece in pieces:
                size += len(piece)
                if size > cap:
                    raise _too_large(where, "the body is over", cap)
                if size > RATIO_FREE_BYTES and size > limits.max_ratio * received[0]:
                    raise ResponseRejected(
                        f"{where}: response too large (the body expands more than "
                        f"{limits.max_ratio}:1 when decompressed; max_body_bytes = {cap})",
                        url=where,
                    )
                if keep:
                    body += piece
        except BaseException:
            # The error's traceback keeps this frame alive (a failed snapshot is
            # cached): it must not keep megabytes of a body with it.
            body.clear()
            raise
        return bytes(body)
    finally:
        response.close()


def _decoded(
    raw: Iterator[bytes], decoders: list[_Inflate], cap: int, where: str
) -> Iterator[bytes]:
    """``raw`` through ``decoders``, their failures said as the monitor's errors."""
    pieces: Iterable[bytes] = raw
    for decoder in decoders:
        pieces = decoder.stream(pieces, cap)
    try:
        yield from pieces
    except _TooLarge:
        raise _too_large(where, "the decompressed body is over", cap) from None
    except zlib.error as exc:
        raise MeasurementError(
            f"{where}: the {decoders[0].encoding} body does not decompress ({exc})"
        ) from None


def _raw(
    response: httpx.Response, deadline: Deadline, received: list[int], cap: int, where: str
) -> Iterator[bytes]:
    """The body as sent, counted into ``received[0]``: at most ``cap`` bytes, by the deadline."""
    for chunk in response.iter_raw():
        # Each read is bounded by the deadline; a body that keeps coming in
        # small pieces is stopped here, between them.
        if deadline.expired:
            raise httpx.ReadTimeout(deadline.message(), request=response.request)
        received[0] += len(chunk)
        if received[0] > cap:
            raise _too_large(where, "the body is over", cap)
        yield chunk


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "").strip()
    return int(value) if value.isdigit() and len(value) < 30 else None


def _too_large(where: str, what: str, cap: int) -> ResponseRejected:
    return ResponseRejected(
        f"{where}: response too large ({what} max_body_bytes = {cap})", url=where
    )
