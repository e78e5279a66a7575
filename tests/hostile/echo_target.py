"""A hostile portal on loopback that echoes what it was sent: the canary target.

Run as ``python -m tests.hostile.echo_target PORT OTHER_PORT LOGFILE``. Every
request's line and headers (the monitor's credentials among them: its API
key, the Basic header httpx builds from URL userinfo, cookies) come back in
the body, in error texts, in a redirect's ``Location`` and in response
headers, and go to a Pino log the monitor reads (a request line as pino-http
writes it, with the headers, and an application error line quoting them).
``OTHER_PORT`` is another origin a redirect points to.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "echo"
    other_port = 0
    log_path = ""
    log_lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stderr stays quiet; the Pino log is the record

    def _echo(self) -> str:
        lines = [f"{self.command} {self.path}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return "\n".join(lines)

    def _log(self, status: int, echo: str) -> None:
        now = int(time.time() * 1000)
        request = {
            "level": 50 if status >= 500 else 30,
            "time": now,
            "pid": 1,
            "hostname": "echo",
            "req": {
                "id": now,
                "method": self.command,
                "url": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
            },
            "res": {"statusCode": status},
            "responseTime": 12,
            "msg": "request errored" if status >= 500 else "request completed",
        }
        failure = {
            "level": 50,
            "time": now,
            "pid": 1,
            "hostname": "echo",
            "msg": f"upstream rejected the credentials: {echo}",
            "err": {"type": "Error", "message": echo, "stack": f"Error: {echo}\n    at handler"},
        }
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as handle:
            for record in (request, failure):
                handle.write(json.dumps(record) + "\n")

    def _send(
        self, status: int, body: str, *, kind: str = "application/json", **headers: str
    ) -> None:
        echo = self._echo()
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        # Response headers carry the echo too, on one line, and in base64.
        self.send_header("X-Echo", quote(echo, safe=" :/"))
        self.send_header("X-Echo-B64", base64.b64encode(echo.encode()).decode())
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._log(status, echo)

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self) -> None:
        self._drain()
        echo = self._echo()
        path = self.path.split("?", 1)[0]
        if path == "/ready":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.endswith("/health"):
            body = {
                "status": "error",
                "message": echo,
                "checks": {"database": f"down: {echo}", "cache": {"status": "fail", "x": echo}},
            }
            self._send(503, json.dumps(body))
        elif path.endswith("/auth/health-check"):
            self._send(500, f"Internal error while checking {echo}", kind="text/plain")
        elif path.endswith("/health/queues"):
            body = {"whmcs": {"queueSize": echo}, "salesforce": {"queueSize": -1, "x": echo}}
            self._send(200, json.dumps(body))
        elif path.endswith("/health/queues/whmcs"):
            self._send(302, "", Location="/echoed?e=" + quote(echo, safe=""))
        elif path.endswith("/health/queues/salesforce"):
            foreign = f"http://127.0.0.1:{self.other_port}/elsewhere?e={quote(echo, safe='')}"
            self._send(302, "", Location=foreign)
        elif path.endswith("/metrics"):
            # A label echoing the request, then a line that cannot parse, quoting it.
            label = echo.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            text = f'bff_http_active_connections{{echo="{label}"}} 3\n{echo.splitlines()[-1]}\n'
            self._send(200, text, kind="text/plain; version=0.0.4")
        else:
            self._send(500, json.dumps({"error": echo, "path": self.path}))

    def do_HEAD(self) -> None:
        self.do_GET()

    def _refuse(self) -> None:
        self._drain()
        self._send(400, json.dumps({"error": "bad request", "echo": self._echo()}))

    do_POST = do_PUT = do_DELETE = _refuse  # noqa: N815 - the base's names


def main(argv: list[str]) -> None:
    port, other_port, log_path = int(argv[0]), int(argv[1]), argv[2]
    EchoHandler.other_port = other_port
    EchoHandler.log_path = log_path
    with ThreadingHTTPServer(("127.0.0.1", port), EchoHandler) as server:
        server.daemon_threads = True
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
