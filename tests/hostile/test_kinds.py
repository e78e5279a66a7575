"""Every kind of bad response, against the real check that reads it, each in a process of
its own: the check ends within its deadline (plus `SLACK_S`), the process's peak RSS
stays under `MAX_RSS_MB`, the outcome is the one expected with a one-line printable
reason, no burst thread is left, and nothing reaches another origin.

The probe (`tests.hostile.probe`) runs with ``timeout_s = 1``, no retries, unless a
case says otherwise; the expected severities and reasons are written out here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.hostile.runs import REPO
from tests.hostile.server import MODES, HostileServer

pytestmark = pytest.mark.slow

SLACK_S = 1.5
MAX_RSS_MB = 200.0
KILL_AFTER_S = 30.0  # a probe still running then has no bound at all
MAX_REASON = 300

DEADLINE = r"unreachable: ReadTimeout: no complete answer within the deadline of 1 s \(timeout_s\)"
RETRIES = {"retries": 2, "retry_budget_s": 10}
TOO_LARGE = r"response too large \(the body is over max_body_bytes = 10485760\)"
# Whichever bound the bomb reaches first, by how its compressed bytes arrive: the
# size, or the expansion ratio (both are the point: neither lets it expand).
EXPANDS = (
    r"response too large \((the decompressed body is over max_body_bytes = 10485760|"
    r"the body expands more than \d+:1 when decompressed; max_body_bytes = 10485760)\)"
)
DECLARED = r"response too large \(Content-Length 52428800 is over max_body_bytes = 10485760\)"
ANOTHER_ORIGIN = r": another origin, not followed$"


@dataclass(frozen=True)
class Case:
    mode: str
    check: str
    severity: str
    reason: str  # a regular expression the reason must match
    env: dict[str, Any] = field(default_factory=dict)
    where: str = "main"  # "main", "silent" (never accepts), "https" (TLS to a plain port)
    parsing_s: float = 0.0  # the monitor's own work on what it accepted (parsing 100k series)

    @property
    def id(self) -> str:
        extra = "-".join(f"{k}={v}" for k, v in self.env.items())
        return "-".join(p for p in (self.mode, self.check, extra) if p)

    @property
    def settings(self) -> dict[str, Any]:
        """The environment's bounds: 1 s, no retries; big bodies get 5 s to arrive
        (those kinds are about memory, and a loaded machine sends 50 MB slowly)."""
        big = {"timeout_s": 5.0} if self.mode in BIG_BODIES else {}
        return {"timeout_s": 1.0, **big, **self.env}

    @property
    def bound_s(self) -> float:
        """A timeout is not retried: it ends within timeout_s, whatever the budget;
        other failures may be retried within retry_budget_s."""
        timeout = float(self.settings["timeout_s"])
        if "no complete answer within the deadline" in self.reason:
            return timeout + SLACK_S
        budget = float(self.settings.get("retry_budget_s", 0.0))
        return max(timeout, budget) + SLACK_S + self.parsing_s


BIG_BODIES = {
    "chunked-flood",
    "gzip-bomb",
    "deflate-bomb",
    "gzip-nested-bomb",
    "body-50mb",
    "body-50mb-chunked",
    "body-50mb-until-close",
    "503-huge",
    "503-big",
    "metrics-1m-series",
    "metrics-200k-series",
    "metrics-100k-series",
    "metrics-100k-selected",
    "metrics-gzip-1m-series",
    "json-many-values",
    "json-huge-string",
}

CASES = [
    # -- time: the whole exchange within timeout_s, whatever the target trickles
    Case("drip", "health.status", "critical", DEADLINE),
    # retries and their budget do not multiply a timeout: it is not retried
    Case("drip", "health.status", "critical", DEADLINE, env=RETRIES),
    Case("headers-then-hang", "health.status", "critical", DEADLINE, env=RETRIES),
    Case("accept-never-read", "health.status", "critical", DEADLINE, env=RETRIES, where="silent"),
    Case("drip", "app.response_time_p95", "critical", DEADLINE),
    Case("chunked-forever", "health.status", "critical", DEADLINE),
    Case("chunked-forever", "app.response_time_p95", "critical", DEADLINE),
    Case("chunked-forever", "app.active_connections", "critical", DEADLINE),
    Case("headers-then-hang", "health.status", "critical", DEADLINE),
    Case("no-answer", "health.status", "critical", DEADLINE),
    Case("accept-never-read", "health.status", "critical", DEADLINE, where="silent"),
    Case("slowloris-headers", "health.status", "critical", DEADLINE),
    Case("slow-status-line", "health.status", "critical", DEADLINE),
    Case("reset-mid-body", "health.status", "critical", r"unreachable: (ReadError|RemoteProtocol)"),
    Case("close-mid-body", "health.status", "critical", r"unreachable: RemoteProtocolError: peer"),
    Case("close-before-answer", "endpoint.status", "critical", r"unreachable: RemoteProtocolErr"),
    Case("reset-before-answer", "health.status", "critical", r"unreachable: (ReadError|Remote)"),
    Case(
        "reset-before-answer",
        "health.status",
        "critical",
        r"unreachable: (ReadError|Remote)",
        env={"retries": 5, "retry_budget_s": 1.5},
    ),
    # -- memory: caps on the body, its expansion, /metrics series, JSON values
    Case("chunked-flood", "health.status", "critical", TOO_LARGE),
    Case("gzip-bomb", "health.status", "critical", EXPANDS),
    Case("gzip-bomb", "endpoint.status", "critical", EXPANDS),
    Case(
        "gzip-bomb",
        "health.status",
        "critical",
        r"response too large \(the decompressed body is over max_body_bytes = 2097152\)",
        env={"max_body_bytes": 2097152},
    ),
    Case("deflate-bomb", "health.status", "critical", EXPANDS),
    Case(
        "gzip-nested-bomb",
        "health.status",
        "critical",
        r"response too large \(the body expands more than 200:1 when decompressed; "
        r"max_body_bytes = 10485760\)$",
    ),
    Case("body-50mb", "health.status", "critical", DECLARED),
    Case("body-50mb-chunked", "health.status", "critical", TOO_LARGE),
    Case("body-50mb-until-close", "health.status", "critical", TOO_LARGE),
    Case("503-huge", "health.status", "critical", DECLARED),
    Case("503-big", "endpoint.status", "critical", r"^endpoint.status = 'HTTP 503' \(critical"),
    Case("metrics-1m-series", "app.active_connections", "critical", TOO_LARGE),
    Case(
        "metrics-200k-series",
        "app.active_connections",
        "critical",
        r"/metrics: response too large \(more than max_series = 100000 series\)$",
    ),
    Case(
        "metrics-200k-series",
        "app.active_connections",
        "ok",
        r"^app.active_connections = 40% \(ok\)$",
        env={"max_series": 300_000},
        parsing_s=10.0,
    ),
    Case("metrics-100k-series", "app.active_connections", "ok", r"= 40% \(ok\)$", parsing_s=5.0),
    Case(
        "metrics-100k-selected",
        "app.active_connections",
        "unknown",
        r"has more than 10000 series matching bff_http_active_connections",
    ),
    Case("metrics-gzip-1m-series", "app.active_connections", "critical", EXPANDS),
    Case(
        "json-many-values",
        "health.status",
        "critical",
        r"response too large \(JSON of more than 500000 values\)$",
    ),
    Case(
        "json-huge-string",
        "health.status",
        "unknown",
        r"^health.status: the value is a string of 9437184 characters$",
    ),
    # -- JSON the monitor will not read, said plainly
    Case("json-deep", "health.status", "unknown", r"returned JSON nested more than 1024 levels"),
    # Read as non-finite floats: the check names the field (the body's others stay readable).
    Case("json-5000-digits", "whmcs.queue_size", "unknown", r"whmcs.metrics.queueSize is inf:"),
    Case("json-1e400", "whmcs.queue_size", "unknown", r"whmcs.metrics.queueSize is inf: not a"),
    Case("json-nan", "whmcs.queue_size", "unknown", r"whmcs.metrics.queueSize is nan: not a"),
    Case("json-infinity", "whmcs.queue_size", "unknown", r"whmcs.metrics.queueSize is inf: not"),
    Case("json-truncated", "health.status", "unknown", r"not JSON \(application/json; unexpected"),
    Case("json-empty", "health.status", "unknown", r"returned an empty body \(application/json"),
    Case("json-empty", "endpoint.status", "critical", r"= 'HTTP 200, body not JSON \(applicat"),
    Case("html", "health.status", "unknown", r"returned a body that is not JSON \(text/html;"),
    Case("html", "endpoint.status", "critical", r"= 'HTTP 200, body not JSON \(text/html\)'"),
    Case("json-invalid-utf8", "health.status", "critical", r"\(critical not in \['ok', 'degr"),
    # the last of duplicate keys wins, as in JavaScript's JSON.parse; a BOM is skipped;
    # the content type is not required to say JSON
    Case("json-duplicate-keys", "health.status", "ok", r"^health.status = 'ok' \(ok\)$"),
    Case("json-bom", "health.status", "ok", r"^health.status = 'ok' \(ok\)$"),
    Case("json-wrong-content-type", "whmcs.queue_size", "ok", r"= 3 requests \(ok\)$"),
    # -- redirects: within the origin, at most 5; nothing else is followed
    *(
        Case(f"redirect-{code}", "health.status", "ok", r"^health.status = 'ok' \(ok\)$")
        for code in (301, 302, 303, 307, 308)
    ),
    Case("redirect-absolute", "health.status", "ok", r"= 'ok' \(ok\)$"),
    Case("redirect-relative", "health.status", "ok", r"= 'ok' \(ok\)$"),
    Case(
        "redirect-302",
        "health.status",
        "critical",
        r"GET /health: redirected \(302\) to /healthy/health: not followed "
        r"\(follow_redirects = never\)$",
        env={"follow_redirects": "never"},
    ),
    Case("redirect-loop", "health.status", "critical", r"more than 5 redirects, not followed$"),
    Case(
        "redirect-other-port",
        "health.status",
        "critical",
        r"GET /health: redirected \(302\) to http://127\.0\.0\.1:\d+/healthy/health"
        + ANOTHER_ORIGIN,
    ),
    Case(
        "redirect-other-host",
        "health.status",
        "critical",
        r"redirected \(302\) to http://localhost:\d+/healthy/health" + ANOTHER_ORIGIN,
    ),
    Case(
        "redirect-metadata",
        "health.status",
        "critical",
        r"to http://127\.0\.0\.1:\d+/latest/meta-data/iam/security-credentials/portal-role"
        + ANOTHER_ORIGIN,
    ),
    Case("redirect-metadata", "whmcs.queue_size", "critical", ANOTHER_ORIGIN),
    Case(
        "redirect-https",
        "health.status",
        "critical",
        r"\(301\) to https://127" + r".*" + ANOTHER_ORIGIN,
    ),
    Case(
        "redirect-userinfo",
        "health.status",
        "critical",
        r"to http://monitor:\*\*\*@127\.0\.0\.1:\d+/healthy/health: a URL with credentials",
    ),
    Case("redirect-no-location", "endpoint.status", "critical", r"^endpoint.status = 'HTTP 302'"),
    Case(
        "redirect-invalid", "health.status", "critical", r"to an invalid Location \(http://\[::1\)"
    ),
    Case("redirect-huge-location", "health.status", "critical", r"\?aaaaaaaa"),
    # -- status lines and headers
    Case("informational-100", "health.status", "ok", r"= 'ok' \(ok\)$"),
    Case("switching-101", "health.status", "critical", r"unreachable: RemoteProtocolError"),
    Case("no-content-204", "endpoint.status", "critical", r"^endpoint.status = 'HTTP 204'"),
    Case("not-modified-304", "endpoint.status", "critical", r"^endpoint.status = 'HTTP 304'"),
    Case("status-999", "endpoint.status", "critical", r"^endpoint.status = 'HTTP 999'"),
    Case("garbage-status", "health.status", "critical", r"unreachable: RemoteProtocolError: ille"),
    Case("huge-header", "health.status", "critical", r"unreachable: RemoteProtocolError"),
    Case("many-headers", "health.status", "critical", r"unreachable: RemoteProtocolError"),
    # -- text from the target: escape sequences never reach a reason
    Case("esc-body", "health.status", "critical", r"^health.status = '.*down.*' \(critical not"),
    Case(
        "esc-metrics",
        "app.active_connections",
        "unknown",
        r"is not valid Prometheus text format \(Invalid labels: x=\"a\" ?\)$",
    ),
    # -- TLS to a plain HTTP port (it answers 400), and to a port that never answers
    Case(
        "tls-to-plain",
        "health.status",
        "critical",
        r"unreachable: ConnectError: \[SSL",
        where="https",
    ),
    Case(
        "tls-to-silent",
        "health.status",
        "critical",
        r"unreachable: ConnectTimeout: no complete",
        where="silent-https",
    ),
]


def base_url(server: HostileServer, case: Case) -> str:
    if case.where == "silent":
        return f"http://127.0.0.1:{server.silent_port}/{case.mode}"
    if case.where == "silent-https":
        return f"https://127.0.0.1:{server.silent_port}/{case.mode}"
    return server.url(case.mode, scheme="https" if case.where == "https" else "http")


def probe(request: dict[str, Any]) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.hostile.probe", json.dumps(request)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=KILL_AFTER_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the check did not end within {KILL_AFTER_S} s: no bound at all")
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def is_printable_line(text: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def test_there_are_more_than_forty_kinds() -> None:
    kinds = {case.mode for case in CASES}
    assert len(kinds) >= 40
    assert kinds <= set(MODES) | {"accept-never-read", "tls-to-silent"}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_each_kind_is_bounded(hostile: HostileServer, case: Case) -> None:
    foreign = len(hostile.reached(hostile.other_port)) + len(hostile.reached(hostile.metadata_port))
    result = probe({"check": case.check, "base_url": base_url(hostile, case), "env": case.settings})

    assert result["seconds"] <= case.bound_s, result
    assert result["rss_mb"] <= MAX_RSS_MB, result
    assert result["burst_threads_left"] == [], result
    reason = result["reason"]
    assert (result["severity"], bool(re.search(case.reason, reason))) == (case.severity, True), (
        reason
    )
    assert len(reason) <= MAX_REASON, reason
    assert is_printable_line(reason), reason
    assert result["unreachable"] == ("unreachable:" in reason)
    # Nothing is ever sent to another origin, whatever the target redirects to.
    after = len(hostile.reached(hostile.other_port)) + len(hostile.reached(hostile.metadata_port))
    assert after == foreign
    assert not [r for r in hostile.recorded if r.headers.get("host", "").startswith("localhost")]
