"""Whole runs of the catalogue (``synthetic run``, a real process) against hostile targets:
what one bad endpoint costs a run, what a redirect can reach, what a target can print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.hostile.runs import results, run_catalogue, write_config
from tests.hostile.server import HostileServer, Recorded

pytestmark = pytest.mark.slow

MAX_RSS_MB = 200.0
STARTUP_S = 20.0  # a run's own start and finish (pytest, collection, results) on a loaded machine
SNAPSHOT_PATHS = (
    "/health",
    "/health/queues",
    "/health/queues/whmcs",
    "/health/queues/salesforce",
    "/health/catalog/cache",
    "/auth/health-check",
    "/metrics",
)


def base_url(server: HostileServer, mode: str, tmp_path: Path) -> str:
    """The mode's URL with a prefix of this test's own: its requests are told apart."""
    return f"{server.url(mode)}/~{tmp_path.name}"


def requests_for(server: HostileServer, url: str) -> list[Recorded]:
    prefix = url.split("/", 3)[3]
    return [r for r in server.reached(server.port) if r.line.split(" ")[1][1:].startswith(prefix)]


def paths_of(server: HostileServer, url: str) -> list[str]:
    prefix = "/" + url.split("/", 3)[3]
    return [r.line.split(" ")[1].removeprefix(prefix) for r in requests_for(server, url)]


def test_a_run_against_endpoints_that_never_finish_ends_in_bounded_time(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """Every endpoint hangs, each its own way (drips, chunks forever, stops after the
    headers, never answers, sends its headers a byte at a time): each is waited on
    once (1 s; a timeout is not retried, whatever the retries and their budget), the
    p95 burst once, and the run writes its results."""
    url = base_url(hostile, "hang-mix", tmp_path)
    write_config(tmp_path, url, retries=2, retry_budget_s=10)
    waits = len(SNAPSHOT_PATHS) + 1  # each snapshot once, and the burst
    run = run_catalogue(tmp_path, limit_s=waits + STARTUP_S + 30)

    assert not run.killed, f"the run did not end within {waits + STARTUP_S + 30} s"
    assert run.seconds <= waits + STARTUP_S, run.seconds
    assert run.rss_mb <= MAX_RSS_MB
    assert run.code == 2, run.output[-3000:]
    checks = results(tmp_path)["checks"]
    http = [c for c in checks if c["severity"] != "skipped"]
    assert len(http) >= 20
    for check in http:
        assert check["severity"] == "critical", check
        assert "unreachable: ReadTimeout: no complete answer within the deadline" in check["reason"]
    # Each endpoint was waited on once, however many checks read it.
    fetched = paths_of(hostile, url)
    assert sorted(p for p in fetched if p != "/p95") == sorted(SNAPSHOT_PATHS)


def test_a_check_stopped_mid_fetch_leaves_its_failure_to_the_next(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """timeout_s longer than check_timeout_s: the first check reading /health is stopped
    by its time limit mid-fetch; the checks after it are told, not made to wait again."""
    url = base_url(hostile, "drip", tmp_path)
    write_config(tmp_path, url, timeout_s=30, check_timeout_s=1)
    run = run_catalogue(tmp_path, "checks/check_health.py", limit_s=60)

    assert not run.killed
    checks = {c["id"].split("::")[-1]: c for c in results(tmp_path)["checks"]}
    readers = ["check_health_status", "check_health_entry[database]", "check_health_entry[cache]"]
    readers.append("check_endpoint[/health]")
    first = [name for name in readers if "was stopped" not in checks[name]["reason"]]
    assert len(first) == 1, [checks[name]["reason"] for name in readers]
    for name in set(readers) - set(first):
        assert checks[name]["severity"] == "critical"
        assert f"no answer before {first[0]} was stopped" in checks[name]["reason"]
    assert paths_of(hostile, url).count("/health") == 1
    # Six endpoints, each stopped once at 1 s; nothing waited for twice.
    assert run.seconds <= 6 * 1 + STARTUP_S


def test_a_redirect_to_a_metadata_address_is_not_followed(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """The target redirects every endpoint to a cloud-metadata-style address (a second
    loopback port): nothing is sent there, the API key least of all, and nothing from
    there lands in results.json; the Location is named in the reason."""
    canary = "canary-api-key-7d1f0c2e9b"
    url = base_url(hostile, "redirect-metadata", tmp_path)
    write_config(tmp_path, url, headers={"X-Api-Key": "${HOSTILE_API_KEY}"})
    run = run_catalogue(
        tmp_path, "checks/check_health.py", "checks/check_queues.py", limit_s=60,
        env={"HOSTILE_API_KEY": canary},
    )  # fmt: skip

    assert not run.killed
    assert hostile.reached(hostile.metadata_port) == []
    sent = requests_for(hostile, url)
    assert sent
    assert all(r.headers.get("x-api-key") == canary for r in sent)  # to its own origin only
    document = (tmp_path / "synthetic-results" / "results.json").read_text()
    for foreign in ("ASIAFOREIGNKEY", "foreign-secret", canary):
        assert foreign not in document
        assert foreign not in run.output
    status = {c["id"].split("::")[-1]: c for c in results(tmp_path)["checks"]}
    reason = status["check_health_status"]["reason"]
    assert status["check_health_status"]["severity"] == "critical"
    assert re.search(r"redirected \(302\) to http://127\.0\.0\.1:\d+/latest/meta-data/", reason)
    assert "unreachable" not in reason


def test_escape_sequences_from_the_target_never_reach_the_terminal(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """A health body and a /metrics parse error full of ESC and OSC sequences: the
    summary, the failures and the tracebacks print none of them."""
    write_config(
        tmp_path,
        base_url(hostile, "esc-body", tmp_path),
        metrics_url=base_url(hostile, "esc-metrics", tmp_path) + "/metrics",
    )
    run = run_catalogue(
        tmp_path, "checks/check_health.py", "checks/check_application.py", "-rA", limit_s=60
    )

    assert not run.killed
    assert "is not valid Prometheus text format" in run.output  # the parse error is shown
    for control in ("\x1b", "\x07", "\x9b", "\x9d", "\r"):
        assert control not in run.output
    for check in results(tmp_path)["checks"]:
        assert not re.search(r"[\x00-\x1f\x7f-\x9f]", check["reason"]), check["reason"]


@pytest.mark.parametrize(
    "mode", ["gzip-bomb", "body-50mb-chunked", "metrics-1m-series", "json-many-values"]
)
def test_a_run_against_oversized_answers_stays_small(
    hostile: HostileServer, tmp_path: Path, mode: str
) -> None:
    """Every endpoint answers more than the monitor reads: CRITICAL "response too large",
    never "unreachable", and the monitor's peak RSS stays under 200 MB."""
    write_config(tmp_path, base_url(hostile, mode, tmp_path), timeout_s=5)  # memory, not time
    run = run_catalogue(tmp_path, limit_s=120)

    assert not run.killed
    assert run.rss_mb <= MAX_RSS_MB, run.rss_mb
    too_large = [c for c in results(tmp_path)["checks"] if "response too large" in c["reason"]]
    assert too_large
    assert all(c["severity"] == "critical" for c in too_large)
    assert all("unreachable" not in c["reason"] for c in too_large)


@pytest.mark.parametrize("mode", ["json-huge-string", "503-big"])
def test_a_run_against_bodies_just_under_the_cap_stays_small(
    hostile: HostileServer, tmp_path: Path, mode: str
) -> None:
    """Every endpoint answers some 9 MB, under the cap: each check reads it, and the
    monitor's peak RSS still stays under 200 MB."""
    write_config(tmp_path, base_url(hostile, mode, tmp_path), timeout_s=5)
    run = run_catalogue(tmp_path, limit_s=120)

    assert not run.killed
    assert run.rss_mb <= MAX_RSS_MB, run.rss_mb
    assert results(tmp_path)["complete"] is True
