"""Loopback web servers answering scripted routes (status, headers, delay), and
what they saw: the runbook links' checker and its check are tested against them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    paths: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def serve(routes: dict[str, tuple[int, dict[str, str], float]]) -> tuple[ThreadingHTTPServer, Seen]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with seen.lock:
                seen.paths.append(self.path)
                seen.in_flight += 1
                seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
            status, headers, delay = routes.get(self.path, (404, {}, 0.0))
            try:
                time.sleep(delay)
            finally:
                # Done before the answer goes out: once the client has its answer it
                # may send the next request, which must not find this one in flight.
                with seen.lock:
                    seen.in_flight -= 1
            body = b"runbook\n"
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the checker gave up on it: that is the point of the test

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen
