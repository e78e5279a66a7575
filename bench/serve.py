"""Benchmark: the CPU of a `synthetic serve` round against a bare httpx script
making the same requests, the runner's start-up, and its memory over many rounds.

    .venv/bin/python bench/serve.py [--rounds 40] [--memory-rounds 300]

Against the embedded sandbox (healthy; no Redis or PostgreSQL, so those checks
skip as in `synthetic demo --no-services`), one after the other:

1. the requests one round makes, recorded by the sandbox;
2. the bare script: a fresh ``python`` process with httpx making exactly
   those requests on one client (whole process: interpreter, import, requests),
   and the same requests again inside one warm process (requests only);
3. ``synthetic serve --rounds 1`` and ``--rounds N+1``: the CPU of every process
   of the runner (runner, zygote, rounds), so a round costs the difference / N;
4. ``synthetic watch --rounds 3``: the previous way, for comparison;
5. the runner's and its zygote's resident memory after 10 rounds and after
   ``--memory-rounds`` rounds.

CPU is user + system time of the processes and the children they waited for
(``getrusage``), so nothing of this script's own work is counted.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from synthetic.sandbox import Sandbox  # noqa: E402

CONFIG = ["--config", str(REPO / "pyproject.toml"), "--env", "sandbox"]
BARE = """
import sys, httpx
base, paths = sys.argv[1], sys.argv[2:]
with httpx.Client(base_url=base, timeout=10) as client:
    for path in paths:
        client.get(path).read()
"""
WARM = """
import sys, time, httpx
base, paths = sys.argv[1], sys.argv[2:]
client = httpx.Client(base_url=base, timeout=10)
for path in paths:
    client.get(path).read()  # connections and imports warm
start = time.process_time()
for _ in range(20):
    for path in paths:
        client.get(path).read()
print((time.process_time() - start) / 20)
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(command: list[str], **options: object) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, output) of a command and everything it waited for."""
    before, start = children_cpu(), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True, **options)  # type: ignore[call-overload]
    return children_cpu() - before, time.monotonic() - start, done.stdout + done.stderr


def serve(tmp: Path, rounds: int, env: dict[str, str], alerts: str) -> tuple[float, float, str]:
    results = tmp / f"serve-{rounds}-{alerts}"
    shutil.rmtree(results, ignore_errors=True)
    return measured(
        [sys.executable, "-m", "synthetic", "serve", *CONFIG, "--listen", "127.0.0.1:0",
         "--every", "0.01s", "--rounds", str(rounds), "--alerts", alerts,
         "--results-dir", str(results)],
        env=env,
    )  # fmt: skip


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory(tmp: Path, rounds: int, env: dict[str, str]) -> list[tuple[int, int, int]]:
    """(round, runner RSS KB, zygote RSS KB) after 10 rounds and at the end."""
    log = tmp / "memory.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthetic", "serve", *CONFIG, "--listen", "127.0.0.1:0",
             "--every", "0.01s", "--rounds", str(rounds + 5), "--alerts", "dry-run",
             "--results-dir", str(tmp / "memory")],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    samples = []
    for wanted in (10, rounds):
        while process.poll() is None:
            done = len(re.findall(r": round \d+:", log.read_text()))
            if done >= wanted:
                break
            time.sleep(0.05)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        samples.append((wanted, rss_kb(process.pid), rss_kb(int(children[0])) if children else 0))
    process.wait()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--memory-rounds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synthetic-bench-") as directory, Sandbox() as box:
        tmp = Path(directory)
        env = {**os.environ, "SYNTHETIC_SANDBOX_URL": box.url}
        env.pop("SYNTHETIC_SANDBOX_REDIS_URL", None)
        env.pop("SYNTHETIC_SANDBOX_POSTGRES_DSN", None)

        box.clear_requests()
        serve(tmp, 1, env, "off")
        made = [r.path for r in box.requests if r.method == "GET"]
        print(f"one round makes {len(made)} requests: {dict(collections.Counter(made))}")

        bare = [measured([sys.executable, "-c", BARE, box.url, *made])[0] for _ in range(5)]
        warm = float(measured([sys.executable, "-c", WARM, box.url, *made])[2].split()[-1])
        bare_cpu = min(bare)
        print(f"bare script, whole process: {bare_cpu * 1000:.0f} ms CPU (best of 5)")
        print(f"the same requests in a warm process: {warm * 1000:.1f} ms CPU")

        for alerts in ("off", "dry-run"):
            one, _, output = serve(tmp, 1, env, alerts)
            many, _, _ = serve(tmp, args.rounds + 1, env, alerts)
            per_round = (many - one) / args.rounds
            ready = re.search(r"ready in ([\d.]+)s", output)
            print(
                f"serve (alerts {alerts}): {per_round * 1000:.0f} ms CPU per round "
                f"({per_round / bare_cpu:.2f}x the bare script, "
                f"{per_round / warm:.1f}x its requests alone); start-up and one round "
                f"{one:.2f} s CPU, ready in {ready.group(1) if ready else '?'} s"
            )

        cpu, _, _ = measured(
            [sys.executable, "-m", "synthetic", "watch", *CONFIG, "--every", "0.01s",
             "--rounds", "3", "--alerts", "off", "--results-dir", str(tmp / "watch")],
            env=env,
        )  # fmt: skip
        print(f"watch (a fresh `synthetic run` a round): {cpu / 3 * 1000:.0f} ms CPU per round")

        for wanted, runner, zygote in memory(tmp, args.memory_rounds, env):
            print(f"after {wanted} rounds: runner {runner / 1024:.1f} MB, zygote "
                  f"{zygote / 1024:.1f} MB resident")  # fmt: skip


if __name__ == "__main__":
    main()
