"""The sandbox's HTTP server: `Sandbox` (start/stop in a daemon thread) and `serve`.

Standard library only: a `http.server.ThreadingHTTPServer` bound to loopback,
one daemon thread per connection, HTTP/1.1 keep-alive, no request logging.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import signal
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final

from synthetic.errors import ConfigError
from synthetic.sandbox.app import Bff, Reply

MAX_RECORDED: Final = 1000
"""How many requests `Sandbox.requests` keeps (the most recent)."""

_MAX_BODY: Final = 64 * 1024
_STOP_TIMEOUT_S: Final = 2.0


class Headers(Mapping[str, str]):
    """Request headers: a read-only mapping whose lookups ignore case.

    Iterates over the names as the client sent them; a repeated header's
    values are joined with ``", "``.
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        names: dict[str, str] = {}
        values: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            names.setdefault(key, name)
            values[key] = f"{values[key]}, {value}" if key in values else value
        self._names = names
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received.

    ``path`` is the request target as sent (with the query string);
    ``status`` is None when the connection was reset instead (``down``).
    """

    method: str
    path: str
    headers: Headers
    scenario: str
    status: int | None


def _check_host(host: str) -> str:
    """Return the address to bind for ``host``; refuse anything not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"sandbox host {host!r} is not a loopback address: use 127.0.0.1, ::1 or localhost"
        )
    return host.strip("[]")


class _Server(ThreadingHTTPServer):
    """The HTTP server: tracks its connections so `Sandbox.stop` can cut them all."""

    daemon_threads = True
    timeout = 0.05  # handle_request's poll, so the serving loop sees a stop quickly

    def __init__(
        self,
        address: tuple[str, int],
        family: int,
        bff: Bff,
        record: Callable[[RecordedRequest], None],
    ) -> None:
        self.address_family = family
        self.bff = bff
        self.record = record
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._dropped: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also calls socket.getfqdn(), a DNS lookup: skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def drop(self, request: socket.socket) -> None:
        """Mark ``request`` to be reset (SO_LINGER 0, no FIN) instead of closed."""
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._lock:
            self._dropped.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
            dropped = request in self._dropped
            self._dropped.discard(request)
        if dropped:
            self.close_request(request)  # no shutdown(SHUT_WR): the peer sees a reset
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or self.stopping.is_set():
            return  # the client went away, or we are stopping: nothing to report
        super().handle_error(request, client_address)

    def cut_connections(self) -> None:
        """Shut down every open connection, waking their handler threads."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "synthetic-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK
    timeout = 5  # idle keep-alive connections close after 5 s, as Node.js's default

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox records requests in `Sandbox.requests` instead."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        reply = self.server.bff.handle(self.command, self.path, body)
        if reply.delay_s > 0 and self.server.stopping.wait(reply.delay_s):
            reply = Reply(0, "", b"", reply.scenario, drop=True)  # stopping: cut it short
        headers = Headers((name, value) for name, value in self.headers.items())
        self.server.record(
            RecordedRequest(
                self.command,
                self.path,
                headers,
                reply.scenario,
                None if reply.drop else reply.status,
            )
        )
        if reply.drop:
            self.server.drop(self.connection)
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("X-Powered-By", "Express")
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        correlation_id = self.headers.get("X-Correlation-Id")
        if correlation_id is not None:
            self.send_header("X-Correlation-Id", correlation_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_body(self) -> bytes | None:
        """The request body (at most 64 KiB), or None after answering 4xx."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.send_error(411, "Length Required")
                return None
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0 or size > _MAX_BODY:
            self.send_error(413 if size > _MAX_BODY else 400)
            self.close_connection = True
            return None
        return self.rfile.read(size)


class Sandbox:
    """A simulated Customer Portal BFF on loopback, for checks to run against.

    >>> with Sandbox("degraded", slow_delay_s=0.2) as sandbox:  # doctest: +SKIP
    ...     httpx.get(f"{sandbox.url}/health").json()["status"]
    'degraded'

    The scenario (see `synthetic.sandbox.scenarios`) can change while running,
    with `set_scenario` or ``PUT /__sandbox/scenario {"scenario": "down"}``;
    it applies from the next request. `requests` records what clients sent.
    """

    def __init__(
        self,
        scenario: str = "healthy",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_delay_s: float = 2.5,
    ) -> None:
        self._bind_host = _check_host(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"sandbox port {port!r} is not a port number (0-65535)")
        if not 0 <= slow_delay_s < float("inf"):
            raise ConfigError(f"sandbox slow_delay_s {slow_delay_s!r} must be >= 0 seconds")
        self._bff = Bff(scenario, slow_delay_s=slow_delay_s)
        self.host = self._bind_host
        self.port = port
        self._slow_delay_s = slow_delay_s
        self._requests: collections.deque[RecordedRequest] = collections.deque(maxlen=MAX_RECORDED)
        self._requests_lock = threading.Lock()
        self._lifecycle = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._server else "new"
        return f"<Sandbox {self.scenario} {self.url} {state}>"

    @property
    def slow_delay_s(self) -> float:
        """How long the ``slow`` scenario delays each non-admin response, in seconds."""
        return self._slow_delay_s

    # -- scenario -----------------------------------------------------------

    @property
    def scenario(self) -> str:
        """The current scenario's name."""
        return self._bff.scenario

    def set_scenario(self, name: str) -> None:
        """Switch scenario; applies from the next request. Unknown -> `ConfigError`."""
        self._bff.set_scenario(name)

    # -- requests -----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The last `MAX_RECORDED` requests received, oldest first (a copy)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    # -- lifecycle ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (the port is known once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self. A no-op if running."""
        with self._lifecycle:
            if self._stopped:
                raise RuntimeError("this sandbox was stopped; create a new Sandbox")
            if self._server is not None:
                return self
            family = socket.AF_INET6 if ":" in self._bind_host else socket.AF_INET
            try:
                server = _Server((self._bind_host, self.port), family, self._bff, self._record)
            except OSError as exc:
                raise OSError(
                    exc.errno, f"cannot listen on {self._bind_host}:{self.port}: {exc.strerror}"
                ) from exc
            self.port = int(server.server_address[1])
            self._server = server
            self._thread = threading.Thread(
                target=self._serve, args=(server,), name=f"sandbox:{self.port}", daemon=True
            )
            self._thread.start()
            return self

    @staticmethod
    def _serve(server: _Server) -> None:
        while not server.stopping.is_set():
            server.handle_request()

    def stop(self) -> None:
        """Stop serving, release the port and cut open connections. Idempotent.

        Bounded: in-flight delayed (``slow``) requests are reset, and the
        serving thread is joined for at most 2 s.
        """
        with self._lifecycle:
            self._stopped = True
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.stopping.set()
        with contextlib.suppress(OSError):  # wakes the serving loop's select at once (Linux)
            server.socket.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(_STOP_TIMEOUT_S)
        server.server_close()
        server.cut_connections()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(scenario: str, host: str, port: int, *, slow_delay_s: float = 2.5) -> None:
    """Run a sandbox until Ctrl-C or SIGTERM (blocking), for ``synthetic sandbox``.

    Prints one line with the URL. Bad arguments raise `ConfigError` before
    anything listens.
    """
    done = threading.Event()
    sandbox = Sandbox(scenario, host=host, port=port, slow_delay_s=slow_delay_s)
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        done.set()

    if in_main:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        sandbox.start()
        print(
            f"synthetic sandbox: {sandbox.url} (scenario {sandbox.scenario}; "
            f"admin {sandbox.url}/__sandbox/scenario; Ctrl-C to stop)",
            flush=True,
        )
        try:
            while not done.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        sandbox.stop()
        if in_main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
