"""Benchmark: a whole run of the catalogue against each kind of hostile target.

    .venv/bin/python bench/hostile.py                # every kind, about 5 minutes
    .venv/bin/python bench/hostile.py gzip-bomb drip # some kinds

Starts the hostile server of the tests (`tests/hostile/server.py`) on loopback
and, for each kind, points every endpoint of an environment at it (``/health``,
the queues, ``/metrics``, the p95 burst) and runs ``synthetic run`` in a process
of its own, with the defaults a deployment has except ``timeout_s = 2``
(``retries = 2``, ``retry_budget_s = 10``, ``max_body_bytes`` 10 MB,
``max_series`` 100k, ``check_timeout_s = 60``). Prints a Markdown table: the
run's wall time, its peak RSS (read as a child's, see `tests.hostile.runs`),
and what its checks said. Measurements, not assertions: the tests assert the
bounds (`tests/hostile/`).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.hostile.runs import run_catalogue, write_config  # noqa: E402
from tests.hostile.server import MODES, HostileServer  # noqa: E402

# Kinds served on the companion ports rather than by a path of the main one.
EXTRA = ("accept-never-read", "tls-to-silent")
SETTINGS = {
    "timeout_s": 2,
    "retries": 2,
    "retry_budget_s": 10,
    "check_timeout_s": 60,
    "p95_paths": ["/health", "/health/queues"],
    "p95_sample_size": 20,
}


def base_url(server: HostileServer, kind: str) -> str:
    if kind == "accept-never-read":
        return f"http://127.0.0.1:{server.silent_port}/x"
    if kind == "tls-to-silent":
        return f"https://127.0.0.1:{server.silent_port}/x"
    return server.url(kind, scheme="https" if kind == "tls-to-plain" else "http")


def outcome(directory: Path) -> str:
    """The checks' severities, and the most frequent reason's gist."""
    path = directory / "synthetic-results" / "results.json"
    if not path.exists():
        return "no results.json"
    checks = [c for c in json.loads(path.read_text())["checks"] if c["severity"] != "skipped"]
    counts = collections.Counter(c["severity"] for c in checks)
    gists = collections.Counter(_gist(c["reason"]) for c in checks if c["severity"] != "ok")
    shown = ", ".join(f"{n} {severity}" for severity, n in counts.most_common())
    return shown + (f"; mostly {gists.most_common(1)[0][0]}" if gists else "")


def _gist(reason: str) -> str:
    for words in ("response too large", "another origin", "more than 5 redirects",
                  "unreachable: ReadTimeout", "unreachable: ConnectTimeout",
                  "unreachable: ConnectError", "unreachable: RemoteProtocolError",
                  "unreachable: ReadError", "not JSON", "an empty body", "nested more than",
                  "digits", "out of range", "which is not a JSON value", "HTTP ",
                  "not valid Prometheus text", "series matching", "credentials",
                  "invalid Location"):  # fmt: skip
        if words in reason:
            return f"`{words.strip()}`"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kinds", nargs="*", help="kinds to run (default: all)")
    args = parser.parse_args()
    kinds = args.kinds or [*MODES, *EXTRA]
    print("| kind | wall time | peak RSS | checks |")
    print("|---|---:|---:|---|")
    with HostileServer() as server:
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="synthetic-bench-") as scratch:
                directory = Path(scratch)
                write_config(directory, base_url(server, kind), **SETTINGS)
                run = run_catalogue(directory, limit_s=600)
                print(f"| {kind} | {run.seconds:.1f} s | {run.rss_mb:.0f} MB "
                      f"| {outcome(directory)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
