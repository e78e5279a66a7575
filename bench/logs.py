"""Benchmark: the log analysis against the guide's greps, on the same big file.

    .venv/bin/python bench/logs.py --size 1GB

Writes realistic Pino logs (requests, ~1 % errors, calls to Salesforce, WHMCS
and Freebit, a few slow requests; all within the last hour, the worst case:
every line is in the window) to a temporary directory, warms the page cache,
then times, one after the other:

1. ``grep -c '"level":50' FILE``
2. ``grep '"duration":[0-9]\\{4,\\}' FILE | tail -20`` (the guide's slow requests)
3. the full analysis (every log metric) from a cold state, in a child process
   that reports its peak RSS;
4. the same after appending 10 MB, from the state the cold run left.

The directory is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from synthetic.sandbox.pino import external_line, request_line  # noqa: E402

PATHS = ("/api/invoices", "/api/subscriptions", "/api/catalog", "/api/orders", "/health",
         "/api/auth/me", "/api/invoices/1042", "/api/sim/8931/usage")  # fmt: skip
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


def parse_size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for suffix, factor in units.items():
        if text.upper().endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def generate(path: Path, size: int, *, start_ms: int, end_ms: int, seed: int = 6) -> int:
    """Lines from ``start_ms`` to ``end_ms`` until ``size`` bytes; returns the line count."""
    rng = random.Random(seed)
    written = lines = 0
    estimate = max(size // 290, 1)
    with path.open("ab") as out:
        batch: list[bytes] = []
        while written < size:
            at = start_ms + (end_ms - start_ms) * min(lines, estimate) // estimate
            at += rng.randint(-500, 500)  # several writers: a little out of order
            cid = f"req-{lines:x}"
            if rng.random() < 0.15:
                dependency = rng.choice(("salesforce", "whmcs", "freebit"))
                scale = 6.5 if dependency == "freebit" else 5.8
                line = external_line(
                    time_ms=at, dependency=dependency, operation="query",
                    duration_ms=round(rng.lognormvariate(scale, 0.6)), correlation_id=cid,
                    failed=rng.random() < 0.01, status=200,
                )  # fmt: skip
            else:
                status = 500 if rng.random() < 0.01 else 404 if rng.random() < 0.02 else 200
                slow = rng.random() < 0.005
                duration = rng.uniform(2000, 9000) if slow else rng.lognormvariate(5.0, 0.7)
                line = request_line(
                    time_ms=at, method=rng.choice(("GET", "GET", "GET", "POST")),
                    path=rng.choice(PATHS), status=status, duration_ms=round(duration),
                    correlation_id=cid, extra={"userAgent": AGENT, "ip": "10.0.3.17"},
                )  # fmt: skip
            batch.append(line)
            written += len(line)
            lines += 1
            if len(batch) >= 20_000:
                estimate = max(lines * size // written, lines)  # from the real line size
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    return lines


def timed_shell(command: str) -> float:
    started = time.perf_counter()
    # Output to a pipe, not /dev/null: GNU grep stops at the first match when it
    # sees /dev/null as its output.
    subprocess.run(["bash", "-c", command], check=True, capture_output=True)
    return time.perf_counter() - started


def analyse_child(log: Path, state: Path) -> dict[str, float]:
    """Run the analysis in a child process; its wall time, bytes read and peak RSS."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(log), str(state)],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"analysis failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def child(log: Path, state_file: Path) -> None:
    """The analysis, as the log checks run it: previous state in, new state out."""
    started = time.perf_counter()
    from synthetic.logs.analysis import analyse
    from synthetic.logs.metrics import LogMetrics
    from synthetic.logs.settings import LogsSettings

    settings = LogsSettings()
    previous = json.loads(state_file.read_text()) if state_file.exists() else None
    document = analyse([str(log)], settings, previous)
    metrics = LogMetrics(document, settings)
    values = [
        metrics.error_rate().value,
        metrics.error_count().value,
        metrics.response_time_p95().value,
        metrics.slow_requests().value,
        metrics.external_error_rate().value,
        *(metrics.external_error_rate(d).value for d in ("salesforce", "whmcs", "freebit")),
        *(metrics.response_time_p95(f"dep:{d}").value for d in ("salesforce", "whmcs", "freebit")),
    ]
    state_file.write_text(json.dumps(document["state"]))
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "bytes_read": document["run"]["bytes_read"],
        "lines": document["run"]["lines"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "metrics": values,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1GB", help="size of the generated log (1GB, 200MB)")
    parser.add_argument("--append", default="10MB", help="appended before the second run")
    parser.add_argument("--child", nargs=2, metavar=("LOG", "STATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    size, append = parse_size(args.size), parse_size(args.append)
    directory = Path(tempfile.mkdtemp(prefix="synthetic-bench-"))
    try:
        log, state = directory / "combined.log", directory / "state.json"
        now = int(time.time() * 1000)
        started = time.perf_counter()
        lines = generate(log, size, start_ms=now - 55 * 60_000, end_ms=now - 60_000)
        print(f"generated {log.stat().st_size / 1e6:.0f} MB, {lines:,} lines "
              f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
        timed_shell(f"cat {log} > /dev/null")  # the page cache, for everyone alike
        grep_count = timed_shell(f"grep -c '\"level\":50' {log}")
        grep_slow = timed_shell(f"grep '\"duration\":[0-9]\\{{4,\\}}' {log} | tail -20")
        cold = analyse_child(log, state)
        generate(log, append, start_ms=now - 60_000, end_ms=now, seed=7)
        warm = analyse_child(log, state)
        greps = grep_count + grep_slow
        print(f"grep -c '\"level\":50'                      {grep_count:7.2f} s")
        print(f"grep '\"duration\":[0-9]\\{{4,\\}}' | tail -20   {grep_slow:7.2f} s")
        print(f"both greps                                 {greps:7.2f} s")
        print(f"analysis, cold state (all metrics)         {cold['seconds']:7.2f} s  "
              f"({cold['seconds'] / greps:.2f}x the greps), {cold['lines']:,} lines, "
              f"peak RSS {cold['peak_rss_mb']:.0f} MB")  # fmt: skip
        label = f"analysis after appending {append / 1e6:.0f} MB"
        print(f"{label:<43}{warm['seconds']:7.2f} s  read {warm['bytes_read'] / 1e6:.1f} MB, "
              f"peak RSS {warm['peak_rss_mb']:.0f} MB")  # fmt: skip
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
