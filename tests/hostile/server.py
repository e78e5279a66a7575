"""A hostile BFF on loopback: one kind of bad response per path prefix.

``HostileServer().url("drip")`` is a base URL under which every path
(``/health``, ``/health/queues``, ``/metrics``, ...) answers the way the mode
``drip`` does (a segment ``~token`` after the mode is skipped: a test's own
requests can be told apart): a body dripping a byte at a time, a gzip bomb, a redirect to
another origin, an escape sequence in a parse error. The mode ``healthy``
answers as the sandbox portal does when all is well (redirects lead there).

Written on raw sockets, so a mode can break HTTP where a real server would
not (hang after the headers, reset mid-body, send a 101, never accept).
Besides its own port, the server holds:

- ``other_port``: another origin, a plain server that records what reaches it;
- ``metadata_port``: a second loopback port standing in for a cloud metadata
  address (169.254.169.254): it answers credentials and records what reaches
  it, so a test can prove that nothing did;
- ``silent_port``: listens and never accepts (the kernel completes the TCP
  handshake; nothing is ever read or written).

Every handler thread ends when its client goes away, or when the server stops.
"""

from __future__ import annotations

import functools
import gzip
import json
import socket
import socketserver
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from synthetic.sandbox.app import Bff
from synthetic.sandbox.processes import LOOPBACK

Mode = Callable[["_Exchange"], None]
MODES: dict[str, Mode] = {}

_HEAD_LIMIT = 64 * 1024
_WAIT_S = 60.0  # the longest any mode waits on a client (it then gives up)
MB = 1024 * 1024


def mode(name: str) -> Callable[[Mode], Mode]:
    def register(function: Mode) -> Mode:
        MODES[name] = function
        return function

    return register


@dataclass
class Recorded:
    """A request that reached one of the server's ports."""

    port: int
    line: str
    headers: dict[str, str]


@dataclass
class _Exchange:
    """One connection: the request read, the socket to answer on, the server's ports."""

    sock: socket.socket
    method: str
    rest: str  # the path after the mode, e.g. "/health"
    server: HostileServer
    stop: threading.Event

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, status: str, headers: list[tuple[str, str]], *, length: int | None) -> None:
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        lines.append("Connection: close")  # one exchange per connection
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def answer(self, status: str, body: bytes, content_type: str = "application/json") -> None:
        self.head(status, [("Content-Type", content_type)], length=len(body))
        self.send(body)

    def chunk(self, data: bytes) -> None:
        self.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise _Stopped

    def hold(self) -> None:
        """Wait, sending nothing, until the client closes (or the server stops)."""
        self.sock.settimeout(0.2)
        waited = 0.0
        while waited < _WAIT_S and not self.stop.is_set():
            try:
                if self.sock.recv(4096) == b"":
                    return
            except TimeoutError:
                waited += 0.2

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), not a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.server.port}"


class _Stopped(Exception):
    pass


# -- healthy answers, and what the hostile ones put in them -----------------------------------


_HEALTHY = Bff("healthy")


def healthy_reply(rest: str) -> tuple[int, str, bytes]:
    reply = _HEALTHY.handle("GET", rest or "/")
    return reply.status, reply.content_type, reply.body


@mode("healthy")
def _healthy(ex: _Exchange) -> None:
    status, content_type, body = healthy_reply(ex.rest)
    ex.answer(f"{status} OK", body, content_type)


def _health_json(status: str = "ok", **extra: object) -> bytes:
    body = {
        "status": status,
        "checks": {"database": "ok", "cache": "ok"},
        "whmcs": {"metrics": {"queueSize": 3, "failedRequests": 0}},
        **extra,
    }
    return json.dumps(body).encode()


# -- time ------------------------------------------------------------------------------------


@mode("drip")
def _drip(ex: _Exchange) -> None:
    ex.head("200 OK", [("Content-Type", "application/json")], length=100_000)
    while True:
        ex.send(b" ")
        ex.sleep(0.1)


@mode("chunked-forever")
def _chunked_forever(ex: _Exchange) -> None:
    ex.head(
        "200 OK",
        [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
        length=None,
    )
    ex.chunk(b'{"status": "ok", "padding": "')
    while True:
        ex.chunk(b"x" * 16)
        ex.sleep(0.05)


@mode("chunked-flood")
def _chunked_flood(ex: _Exchange) -> None:
    ex.head(
        "200 OK",
        [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
        length=None,
    )
    block = b"x" * 65536
    while not ex.stop.is_set():
        ex.chunk(block)


@mode("headers-then-hang")
def _headers_then_hang(ex: _Exchange) -> None:
    ex.head("200 OK", [("Content-Type", "application/json")], length=100)
    ex.hold()


@mode("no-answer")
def _no_answer(ex: _Exchange) -> None:
    ex.hold()


@mode("slowloris-headers")
def _slowloris_headers(ex: _Exchange) -> None:
    ex.send(b"HTTP/1.1 200 OK\r\n")
    while True:
        for byte in b"X-Slow: still-coming\r\n":
            ex.send(bytes([byte]))
            ex.sleep(0.05)


@mode("slow-status-line")
def _slow_status_line(ex: _Exchange) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
        ex.send(bytes([byte]))
        ex.sleep(0.2)


_HANGS = {
    "/health": "drip",
    "/health/queues": "chunked-forever",
    "/health/queues/whmcs": "headers-then-hang",
    "/health/queues/salesforce": "no-answer",
    "/health/catalog/cache": "slowloris-headers",
    "/auth/health-check": "slow-status-line",
    "/metrics": "chunked-forever",
    "/p95": "drip",
}


@mode("hang-mix")
def _hang_mix(ex: _Exchange) -> None:
    """Each path hangs its own way (drips, chunks forever, stops after the headers...)."""
    MODES[_HANGS.get(ex.rest, "no-answer")](ex)


@mode("reset-mid-body")
def _reset_mid_body(ex: _Exchange) -> None:
    ex.head("200 OK", [("Content-Type", "application/json")], length=10_000)
    ex.send(b'{"status": "ok", "padding": "' + b"x" * 100)
    time.sleep(0.05)
    ex.reset()


@mode("close-mid-body")
def _close_mid_body(ex: _Exchange) -> None:
    ex.head("200 OK", [("Content-Type", "application/json")], length=10_000)
    ex.send(b'{"status": "ok", "padding": "' + b"x" * 100)
    ex.sock.shutdown(socket.SHUT_WR)


@mode("close-before-answer")
def _close_before_answer(ex: _Exchange) -> None:
    ex.sock.shutdown(socket.SHUT_WR)


@mode("reset-before-answer")
def _reset_before_answer(ex: _Exchange) -> None:
    ex.reset()


# -- size ------------------------------------------------------------------------------------

_BOMBS: dict[tuple[str, int], bytes] = {}
_BOMB_LOCK = threading.Lock()


def bomb(encoding: str, size: int) -> bytes:
    """``size`` zero bytes compressed (``gzip`` or zlib ``deflate``): about size/1000 bytes.

    Built from one compressed megabyte repeated: after a full flush a deflate
    block does not refer to the data before it, so identical input gives
    identical blocks. Only the checksum needs the whole size.
    """
    with _BOMB_LOCK:
        if (encoding, size) not in _BOMBS:
            block = bytes(MB)
            deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            first = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
            same = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
            blocks = first + same * (size // MB - 1) + deflater.flush(zlib.Z_FINISH)
            if encoding == "gzip":
                crc = 0
                for _ in range(size // MB):
                    crc = zlib.crc32(block, crc)
                header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
                data = header + blocks + struct.pack("<II", crc, size & 0xFFFFFFFF)
            else:
                adler = 1
                for _ in range(size // MB):
                    adler = zlib.adler32(block, adler)
                data = b"\x78\xda" + blocks + struct.pack(">I", adler)
            _BOMBS[(encoding, size)] = data
        return _BOMBS[(encoding, size)]


@mode("gzip-bomb")
def _gzip_bomb(ex: _Exchange) -> None:
    body = bomb("gzip", 1024 * MB)
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    ex.head("200 OK", headers, length=len(body))
    ex.send(body)


@mode("deflate-bomb")
def _deflate_bomb(ex: _Exchange) -> None:
    body = bomb("deflate", 1024 * MB)
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "deflate")]
    ex.head("200 OK", headers, length=len(body))
    ex.send(body)


@mode("gzip-nested-bomb")
def _gzip_nested_bomb(ex: _Exchange) -> None:
    body = gzip.compress(bomb("gzip", 1024 * MB), 9)
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip, gzip")]
    ex.head("200 OK", headers, length=len(body))
    ex.send(body)


def _zeros(ex: _Exchange, total: int, *, chunked: bool) -> None:
    block = b"0" * 65536
    sent = 0
    while sent < total and not ex.stop.is_set():
        piece = block[: total - sent]
        ex.chunk(piece) if chunked else ex.send(piece)
        sent += len(piece)
    if chunked:
        ex.send(b"0\r\n\r\n")


@mode("body-50mb")
def _body_50mb(ex: _Exchange) -> None:
    ex.head("200 OK", [("Content-Type", "application/json")], length=50 * MB)
    _zeros(ex, 50 * MB, chunked=False)


@mode("body-50mb-chunked")
def _body_50mb_chunked(ex: _Exchange) -> None:
    ex.head(
        "200 OK",
        [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
        length=None,
    )
    _zeros(ex, 50 * MB, chunked=True)


@mode("body-50mb-until-close")
def _body_50mb_until_close(ex: _Exchange) -> None:
    ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    _zeros(ex, 50 * MB, chunked=False)
    ex.sock.shutdown(socket.SHUT_WR)


@mode("503-huge")
def _503_huge(ex: _Exchange) -> None:
    ex.head("503 Service Unavailable", [("Content-Type", "text/html")], length=50 * MB)
    _zeros(ex, 50 * MB, chunked=False)


@mode("503-big")
def _503_big(ex: _Exchange) -> None:
    ex.head(
        "503 Service Unavailable",
        [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")],
        length=None,
    )
    _zeros(ex, 8 * MB, chunked=True)


@functools.cache
def series_body(count: int, name: str = "bff_series") -> bytes:
    """A /metrics of ``count`` series named ``name`` (and the connections gauge)."""
    lines = [
        b"# HELP bff_http_active_connections Open HTTP connections.\n",
        b"# TYPE bff_http_active_connections gauge\n",
        b"bff_http_active_connections 40\n",
        f"# TYPE {name} gauge\n".encode(),
    ]
    template = f'{name}{{{{i="{{:07d}}"}}}} 1\n'
    lines += [template.format(i).encode() for i in range(count)]
    return b"".join(lines)


def _metrics(ex: _Exchange, count: int, *, name: str = "bff_series") -> None:
    if not ex.rest.startswith("/metrics"):
        _healthy(ex)
        return
    headers = [("Content-Type", "text/plain; version=0.0.4"), ("Transfer-Encoding", "chunked")]
    ex.head("200 OK", headers, length=None)
    body = memoryview(series_body(count, name))
    for start in range(0, len(body), 256 * 1024):
        ex.chunk(bytes(body[start : start + 256 * 1024]))
    ex.send(b"0\r\n\r\n")


@mode("metrics-1m-series")
def _metrics_1m(ex: _Exchange) -> None:
    _metrics(ex, 1_000_000)


@mode("metrics-200k-series")
def _metrics_200k(ex: _Exchange) -> None:
    _metrics(ex, 200_000)


@mode("metrics-100k-series")
def _metrics_100k(ex: _Exchange) -> None:
    _metrics(ex, 99_000)


@mode("metrics-100k-selected")
def _metrics_100k_selected(ex: _Exchange) -> None:
    # 99,000 series of the very name the check selects: the worst it reads.
    _metrics(ex, 99_000, name="bff_http_active_connections")


@functools.cache
def _gzip_series() -> bytes:
    return gzip.compress(series_body(1_000_000), 1)


@mode("metrics-gzip-1m-series")
def _metrics_gzip_1m(ex: _Exchange) -> None:
    if not ex.rest.startswith("/metrics"):
        _healthy(ex)
        return
    body = _gzip_series()
    headers = [("Content-Type", "text/plain; version=0.0.4"), ("Content-Encoding", "gzip")]
    ex.head("200 OK", headers, length=len(body))
    ex.send(body)


# -- JSON --------------------------------------------------------------------------------------


def _json_mode(name: str, body: bytes, content_type: str = "application/json") -> None:
    """A mode answering 200 with ``body``."""

    def answer(ex: _Exchange) -> None:
        ex.answer("200 OK", body, content_type)

    MODES[name] = answer


_json_mode("json-deep", b"[" * 100_000 + b"]" * 100_000)
_json_mode(
    "json-5000-digits", _health_json().replace(b'"queueSize": 3', b'"queueSize": ' + b"7" * 5000)
)
_json_mode("json-1e400", _health_json().replace(b'"queueSize": 3', b'"queueSize": 1e400'))
_json_mode("json-nan", _health_json().replace(b'"queueSize": 3', b'"queueSize": NaN'))
_json_mode("json-infinity", _health_json().replace(b'"queueSize": 3', b'"queueSize": Infinity'))
_json_mode("json-many-values", b'{"status": "ok", "values": [' + b"0," * 4_000_000 + b"0]}")
_json_mode("json-huge-string", b'{"status": "' + b"x" * (9 * MB) + b'"}')
_json_mode("json-truncated", _health_json()[:40])
_json_mode("json-duplicate-keys", b'{"status": "down", "status": "ok", "checks": {}}')
_json_mode("json-empty", b"")
_json_mode("json-bom", b"\xef\xbb\xbf" + _health_json())
_json_mode("json-invalid-utf8", _health_json(status="ok").replace(b'"ok"', b'"ok\xff\xfe"', 1))
_json_mode("json-wrong-content-type", _health_json(), "image/png")
_json_mode("html", b"<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>", "text/html")
_json_mode(
    "esc-body",
    _health_json(status="\x1b]0;pwned\x07\x1b[2J\x1b[31mdown\x1b[0m\r\rok"),
)
_json_mode(
    "esc-metrics",
    b"# TYPE bff_http_active_connections gauge\nbff_http_active_connections 40\n"
    b'bff_bad{x="a"\x1b]0;pwned\x07\x1b[2J\x1b[31m} 1\n',
    "text/plain; version=0.0.4",
)


# -- redirects ---------------------------------------------------------------------------------


def _redirect(status: str, location: Callable[[_Exchange], str | None]) -> Mode:
    def answer(ex: _Exchange) -> None:
        target = location(ex)
        headers = [("Content-Type", "text/plain")] + ([("Location", target)] if target else [])
        ex.head(status, headers, length=0)

    return answer


for _code, _word in (
    (301, "Moved Permanently"),
    (302, "Found"),
    (303, "See Other"),
    (307, "Temporary Redirect"),
    (308, "Permanent Redirect"),
):
    MODES[f"redirect-{_code}"] = _redirect(f"{_code} {_word}", lambda ex: f"/healthy{ex.rest}")
MODES["redirect-absolute"] = _redirect("302 Found", lambda ex: f"{ex.origin}/healthy{ex.rest}")
MODES["redirect-relative"] = _redirect(
    "302 Found", lambda ex: "../" * ex.rest.count("/") + f"healthy{ex.rest}"
)
MODES["redirect-loop"] = _redirect("302 Found", lambda ex: f"/redirect-loop{ex.rest}")
MODES["redirect-other-port"] = _redirect(
    "302 Found", lambda ex: f"http://{LOOPBACK}:{ex.server.other_port}/healthy{ex.rest}"
)
MODES["redirect-other-host"] = _redirect(
    "302 Found", lambda ex: f"http://localhost:{ex.server.port}/healthy{ex.rest}"
)
MODES["redirect-metadata"] = _redirect(
    "302 Found",
    lambda ex: (
        f"http://{LOOPBACK}:{ex.server.metadata_port}/latest/meta-data/iam/"
        "security-credentials/portal-role"
    ),
)
MODES["redirect-https"] = _redirect(
    "301 Moved Permanently", lambda ex: f"https://{LOOPBACK}:{ex.server.port}/healthy{ex.rest}"
)
MODES["redirect-userinfo"] = _redirect(
    "302 Found",
    lambda ex: f"http://monitor:hunter2-from-target@{LOOPBACK}:{ex.server.port}/healthy{ex.rest}",
)
MODES["redirect-no-location"] = _redirect("302 Found", lambda ex: None)
MODES["redirect-invalid"] = _redirect("302 Found", lambda ex: "http://[::1")
MODES["redirect-huge-location"] = _redirect(
    "302 Found",
    lambda ex: f"http://{LOOPBACK}:{ex.server.other_port}/healthy{ex.rest}?{'a' * 12_000}",
)


# -- status lines and headers ---------------------------------------------------------------


# An https:// URL to this plain port: the server answers the TLS handshake
# with HTTP's 400, as nginx or node do.
MODES["tls-to-plain"] = _healthy


@mode("informational-100")
def _informational_100(ex: _Exchange) -> None:
    ex.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    _healthy(ex)


@mode("switching-101")
def _switching_101(ex: _Exchange) -> None:
    ex.send(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    ex.send(b"\x81\x05hello")
    ex.hold()


@mode("no-content-204")
def _no_content_204(ex: _Exchange) -> None:
    ex.send(b"HTTP/1.1 204 No Content\r\n\r\n")


@mode("not-modified-304")
def _not_modified_304(ex: _Exchange) -> None:
    ex.send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n")


@mode("status-999")
def _status_999(ex: _Exchange) -> None:
    ex.answer("999 Weird", _health_json())


@mode("garbage-status")
def _garbage_status(ex: _Exchange) -> None:
    ex.send(b"SURPRISE \x1b]0;pwned\x07 not http\r\n\r\n")
    ex.hold()


@mode("huge-header")
def _huge_header(ex: _Exchange) -> None:
    ex.send(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * MB + b"\r\nContent-Length: 2\r\n\r\n{}")


@mode("many-headers")
def _many_headers(ex: _Exchange) -> None:
    ex.send(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100_000)))
    ex.send(b"Content-Length: 2\r\n\r\n{}")


# -- the server --------------------------------------------------------------------------------


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        owner = self.server.owner
        try:
            if _tls_hello(sock):
                # What a plain HTTP server (nginx, node) answers to a TLS handshake.
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                return
            head = _read_head(sock)
            if head is None:
                return
            line, headers = head
            owner.record(self.server.server_address[1], line, headers)
            if self.server.role != "main":
                _other_origin(sock, self.server.role)
                return
            method, target = [*line.split(" "), "", ""][:2]
            path = urlsplit(target).path
            name, _, rest = path.lstrip("/").partition("/")
            if rest.startswith("~"):  # a test's own token: /<mode>/~<token>/health
                rest = rest.partition("/")[2]
            answer = MODES.get(name)
            exchange = _Exchange(sock, method, "/" + rest, owner, owner.stopping)
            if answer is None:
                exchange.answer("404 Not Found", b'{"error": "no such mode"}')
                return
            sock.settimeout(_WAIT_S)
            answer(exchange)
        except (OSError, _Stopped):
            pass  # the client went away, or the server is stopping


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: HostileServer, role: str) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.owner = owner
        self.role = role


def _tls_hello(sock: socket.socket) -> bool:
    """Whether the client opened with a TLS handshake record (0x16 0x03)."""
    first = sock.recv(2, socket.MSG_PEEK)
    return first[:1] == b"\x16" and first[1:2] == b"\x03"


def _read_head(sock: socket.socket) -> tuple[str, dict[str, str]] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            return None
        data += piece
        if len(data) > _HEAD_LIMIT:
            return None
    text = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    line, *rest = text.split("\r\n")
    headers = {}
    for header in rest:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers


def _other_origin(sock: socket.socket, role: str) -> None:
    if role == "metadata":
        body = json.dumps(
            {
                "Code": "Success",
                "AccessKeyId": "ASIAFOREIGNKEY",
                "SecretAccessKey": "foreign-secret",
            }
        ).encode()
    else:
        body = _health_json()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)


@dataclass
class HostileServer:
    """The hostile server and its companion ports; use as a context manager."""

    recorded: list[Recorded] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._servers = {role: _Server(self, role) for role in ("main", "other", "metadata")}
        self._silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._silent.bind((LOOPBACK, 0))
        self._silent.listen(64)
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self._servers["main"].server_address[1]

    @property
    def other_port(self) -> int:
        return self._servers["other"].server_address[1]

    @property
    def metadata_port(self) -> int:
        return self._servers["metadata"].server_address[1]

    @property
    def silent_port(self) -> int:
        port: int = self._silent.getsockname()[1]
        return port

    def url(self, name: str, *, scheme: str = "http") -> str:
        if name not in MODES:
            raise KeyError(f"no mode {name!r}")
        return f"{scheme}://{LOOPBACK}:{self.port}/{name}"

    def record(self, port: int, line: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.recorded.append(Recorded(port, line, headers))

    def reached(self, port: int) -> list[Recorded]:
        with self._lock:
            return [r for r in self.recorded if r.port == port]

    def __enter__(self) -> HostileServer:
        # The big answers are made before the first request: a mode must not
        # spend the client's deadline making its body.
        for encoding in ("gzip", "deflate"):
            bomb(encoding, 1024 * MB)
        _gzip_series()
        for count in (200_000, 99_000):
            series_body(count)
        series_body(99_000, "bff_http_active_connections")
        for server in self._servers.values():
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        self._silent.close()
        for thread in self._threads:
            thread.join(timeout=5)


def serve(seconds: float = 3600.0) -> None:
    """Run the server in the foreground, printing its ports (for a look by hand)."""
    with HostileServer() as server:
        print(
            f"main {server.port} other {server.other_port} "
            f"metadata {server.metadata_port} silent {server.silent_port}",
            flush=True,
        )
        time.sleep(seconds)


if __name__ == "__main__":
    serve()
