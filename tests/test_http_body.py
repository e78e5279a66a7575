"""Reading a body within its bounds: size, decompressed size and ratio, encodings, deadline.

In-memory responses streamed in chunks, as from a socket; the expected bodies are
made here with zlib and gzip, and memory is measured with tracemalloc.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import httpx
import pytest

from synthetic.errors import MeasurementError, ResponseRejected
from synthetic.measure.http_body import BodyLimits, read_body
from synthetic.measure.http_deadline import Deadline

MB = 1024 * 1024
CHUNK = 64 * 1024


class Chunks(httpx.SyncByteStream):
    """A body arriving in chunks, optionally with a pause before each."""

    def __init__(self, data: bytes, *, pause_s: float = 0.0) -> None:
        self.data = data
        self.pause_s = pause_s
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), CHUNK):
            time.sleep(self.pause_s)
            self.sent += 1
            yield self.data[start : start + CHUNK]


def response(
    data: bytes, encoding: str = "", *, pause_s: float = 0.0, **headers: str
) -> httpx.Response:
    if encoding:
        headers["Content-Encoding"] = encoding
    return httpx.Response(
        200,
        headers=headers,
        stream=Chunks(data, pause_s=pause_s),
        request=httpx.Request("GET", "http://127.0.0.1/x"),
    )


def read(answer: httpx.Response, cap: int = MB, *, keep: bool = True, seconds: float = 5) -> bytes:
    return read_body(
        answer,
        BodyLimits(max_bytes=cap),
        deadline=Deadline.after(seconds),
        where="GET /x",
        keep=keep,
    )


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("", lambda data: data),
        ("identity", lambda data: data),
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the standard says
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw, as some servers send
        ("gzip, deflate", lambda data: zlib.compress(gzip.compress(data))),
        ("gzip", lambda data: gzip.compress(data[:500]) + gzip.compress(data[500:])),  # members
    ],
)
def test_a_body_is_decoded(encoding: str, compress: object) -> None:
    body = b'{"status": "ok", "padding": "' + b"x" * 300_000 + b'"}'
    assert read(response(compress(body), encoding)) == body  # type: ignore[operator]


def test_a_gzip_bomb_stops_at_the_cap_a_bounded_piece_at_a_time() -> None:
    bomb = gzip.compress(bytes(200 * MB), 9)  # about 200 KB
    tracemalloc.start()
    try:
        with pytest.raises(ResponseRejected) as info:
            read(response(bomb, "gzip"), cap=2 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        "GET /x: response too large (the decompressed body is over max_body_bytes = 2097152)"
    )
    assert peak < 2 * 2 * MB  # twice the cap at most: never the 200 MB it expands to


def test_a_body_that_expands_too_much_is_refused_before_the_cap() -> None:
    bomb = zlib.compress(bytes(50 * MB), 9)
    with pytest.raises(ResponseRejected, match=r"the body expands more than 200:1"):
        read(response(bomb, "deflate"), cap=100 * MB)


def test_a_body_over_the_cap_is_refused_plain_and_announced() -> None:
    with pytest.raises(ResponseRejected, match=r"\(the body is over max_body_bytes = 1048576\)$"):
        read(response(b"0" * (MB + 1)))
    stream = Chunks(b"0" * 10)
    announced = httpx.Response(200, headers={"Content-Length": str(50 * MB)}, stream=stream)
    with pytest.raises(ResponseRejected, match=r"\(Content-Length 52428800 is over max_"):
        read(announced)
    assert stream.sent == 0  # not a byte was read
    assert read(response(b"0" * MB)) == b"0" * MB  # at the cap is fine


def test_a_body_not_kept_is_still_bounded() -> None:
    assert read(response(gzip.compress(b"a" * 1000), "gzip"), keep=False) == b""
    with pytest.raises(ResponseRejected):
        read(response(gzip.compress(bytes(20 * MB)), "gzip"), keep=False)


NOT_READ = "which the monitor does not read (it asks for gzip, deflate)"


@pytest.mark.parametrize(
    ("encoding", "data", "message"),
    [
        ("br", b"...", f"GET /x answered with Content-Encoding 'br', {NOT_READ}"),
        ("x\x1b[31m", b"", f"GET /x answered with Content-Encoding 'x', {NOT_READ}"),
        (
            "gzip",
            b"not gzip at all",
            "GET /x: the gzip body does not decompress "
            "(Error -3 while decompressing data: incorrect header check)",
        ),
    ],
)
def test_what_cannot_be_decoded_is_said(encoding: str, data: bytes, message: str) -> None:
    with pytest.raises(MeasurementError) as info:
        read(response(data, encoding))
    assert str(info.value) == message


def test_a_body_still_coming_at_the_deadline_is_a_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(
        httpx.ReadTimeout, match=r"^no complete answer within the deadline of 0.3 s"
    ):
        read(response(b"x" * 20 * CHUNK, pause_s=0.05), seconds=0.3)
    assert time.monotonic() - started < 0.3 + 0.2
