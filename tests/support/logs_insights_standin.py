"""A CloudWatch Logs stand-in on loopback that answers Logs Insights calls with
recorded payloads, in the service's JSON protocol (``POST /`` with
``X-Amz-Target: Logs_20140328.<Operation>``), for boto3 to talk to.

moto evaluates no ``filter`` or ``stats`` (tests/test_logs_cloudwatch.py uses it
for the calls' shape only), so the answers a real Logs Insights gives are
replayed here: ``StartQuery`` answers a query id; ``GetQueryResults`` answers
``statuses`` in turn (``Scheduled``, ``Running``, ...) and then the final
payload, whose ``results`` come from ``rows(query_string)``; ``StopQuery``
answers ``{"success": true}``. Every call is recorded.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
Rows = list[dict[str, str]]
# A GetQueryResults payload as the API reference shows it; results filled in.
STATISTICS = {"recordsMatched": 1200.0, "recordsScanned": 48000.0, "bytesScanned": 9.6e6}


@dataclass
class InsightsStandIn:
    rows: Callable[[str], Rows]  # query string -> result rows (field -> value)
    statuses: list[str] = field(default_factory=lambda: ["Running"])  # before the final one
    final: str = "Complete"  # Complete | Failed | Cancelled | Timeout | Running (never ends)
    log_groups: tuple[str, ...] = ("/ecs/customer-portal-bff",)  # others do not exist
    url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls.append((operation, body))
            if operation == "StartQuery":
                if body.get("logGroupName") not in self.log_groups:
                    message = "The specified log group does not exist."
                    return 400, {"__type": "ResourceNotFoundException", "message": message}
                query_id = f"q-{len(self.queries) + 1:04d}"
                self.queries[query_id] = {"body": body, "polls": 0}
                return 200, {"queryId": query_id}
            if operation == "StopQuery":
                return 200, {"success": body.get("queryId") in self.queries}
            if operation != "GetQueryResults":
                return 400, {"__type": "InvalidOperationException", "message": operation}
            query = self.queries.get(body.get("queryId", ""))
            if query is None:
                return 400, {"__type": "ResourceNotFoundException", "message": "no such query"}
            polls = query["polls"]
            query["polls"] += 1
        if polls < len(self.statuses):
            return 200, {"results": [], "statistics": STATISTICS, "status": self.statuses[polls]}
        if self.final != "Complete":
            return 200, {"results": [], "statistics": STATISTICS, "status": self.final}
        rows = self.rows(query["body"]["queryString"])
        results = [[{"field": k, "value": v} for k, v in row.items()] for row in rows]
        return 200, {"results": results, "statistics": STATISTICS, "status": "Complete"}

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


class _Handler(BaseHTTPRequestHandler):
    standin: InsightsStandIn

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        status, payload = self.standin.answer(target.rpartition(".")[2], body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def insights_standin(rows: Callable[[str], Rows], **options: Any) -> Iterator[InsightsStandIn]:
    standin = InsightsStandIn(rows, **options)
    handler = type("Handler", (_Handler,), {"standin": standin})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    standin.url = f"http://{LOOPBACK}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
