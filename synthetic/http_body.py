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
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from synthetic.errors import MeasurementError, ResponseRejected
from synthetic.http_deadline import Deadline
from synthetic.limits import DEFAULT_MAX_BODY_BYTES, MAX_COMPRESSION_RATIO, RATIO_FREE_BYTES
from synthetic.printable import printable

__all__ = ["ACCEPT_ENCODING", "BodyLimits", "read_body"]

ACCEPT_ENCODING = "gzip, deflate"
"""What the monitor asks for: the encodings it can decompress within bounds."""


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_ratio: int = MAX_COMPRESSION_RATIO


class _TooLarge(Exception):
    """A decoder's output would pass its room."""


class _Inflate:
    """zlib, gzip or raw deflate, decompressed a bounded piece at a time."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        gzip = encoding in ("gzip", "x-gzip")
        self._wbits = zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS
        self._object = zlib.decompressobj(self._wbits)
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """The output for ``data``; `_TooLarge` when it would be more than ``room``."""
        try:
            out = self._object.decompress(data, room + 1)
        except zlib.error:
            if self._started or self.encoding != "deflate":
                raise
            # "deflate" is zlib-wrapped by the standard, raw by some servers.
            self._wbits = -zlib.MAX_WBITS
            self._object = zlib.decompressobj(self._wbits)
            out = self._object.decompress(data, room + 1)
        self._started = True
        # Concatenated gzip members: each starts a decompressor of its own.
        while self._object.eof and self._object.unused_data and len(out) <= room:
            rest = self._object.unused_data
            self._object = zlib.decompressobj(self._wbits)
            out += self._object.decompress(rest, room + 1 - len(out))
        if len(out) > room or self._object.unconsumed_tail:
            raise _TooLarge
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
    response: httpx.Response, limits: BodyLimits, *, deadline: Deadline, where: str
) -> bytes:
    """The decoded body of a ``response`` sent with ``stream=True``; it is closed after.

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
        body = bytearray()
        received = 0
        for chunk in _chunks(response, deadline):
            received += len(chunk)
            if received > cap:
                raise _too_large(where, "the body is over", cap)
            piece = chunk
            try:
                for decoder in decoders:
                    room = cap - len(body) if decoder is decoders[-1] else cap
                    piece = decoder.feed(piece, room)
            except _TooLarge:
                raise _too_large(where, "the decompressed body is over", cap) from None
            except zlib.error as exc:
                raise MeasurementError(
                    f"{where}: the {decoders[0].encoding} body does not decompress ({exc})"
                ) from None
            body += piece
            if len(body) > RATIO_FREE_BYTES and len(body) > limits.max_ratio * received:
                raise ResponseRejected(
                    f"{where}: response too large (the body expands more than "
                    f"{limits.max_ratio}:1 when decompressed; max_body_bytes = {cap})",
                    url=where,
                )
        return bytes(body)
    finally:
        response.close()


def _chunks(response: httpx.Response, deadline: Deadline) -> Iterator[bytes]:
    for chunk in response.iter_raw():
        # Each read is bounded by the deadline; a body that keeps coming in
        # small pieces is stopped here, between them.
        if deadline.expired:
            raise httpx.ReadTimeout(deadline.message(), request=response.request)
        yield chunk


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "").strip()
    return int(value) if value.isdigit() and len(value) < 30 else None


def _too_large(where: str, what: str, cap: int) -> ResponseRejected:
    return ResponseRejected(
        f"{where}: response too large ({what} max_body_bytes = {cap})", url=where
    )
