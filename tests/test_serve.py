"""`synthetic serve` end to end: rounds against the sandbox, the page and /metrics
following the portal, a round that hangs in C, a history store that goes away,
and a stop that leaves nothing behind."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from synthetic.sandbox import SPECS, Sandbox
from synthetic.sandbox.postgres_server import PostgresServer
from tests.support.serve_helpers import REPO, alive, repo_config, serving

pytestmark = pytest.mark.slow

WHMCS_QUEUE = "checks/check_queues.py::check_whmcs_queue_size"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox("healthy") as running:
        yield running


def test_rounds_follow_the_portal_and_a_stop_leaves_nothing_behind(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"SYNTHETIC_SANDBOX_URL": sandbox.url, "TMPDIR": str(temp)}
    results = tmp_path / "results"
    with serving(
        tmp_path, *repo_config(), "--every", "1s", "--results-dir", str(results), env=env
    ) as serve:
        serve.wait_rounds(1)
        assert serve.get("/api/results").json()["worst"] == "ok"
        zygotes = serve.children()
        assert zygotes, "the runner has its round process"

        sandbox.set_scenario("whmcs-backlog")
        expected = SPECS["whmcs-backlog"].whmcs.queue_sizes[0]

        def backlogged() -> bool:
            found = {c["id"]: c for c in serve.get("/api/results").json()["checks"]}
            return bool(found[WHMCS_QUEUE]["value"] == expected)

        serve.wait_for(backlogged)
        check = {c["id"]: c for c in serve.get("/api/results").json()["checks"]}[WHMCS_QUEUE]
        assert check["severity"] == "critical"
        metrics = serve.get("/metrics").text
        assert f'check="{WHMCS_QUEUE}",environment="sandbox"' in metrics
        line = next(
            line
            for line in metrics.splitlines()
            if line.startswith("synthetic_check_value{") and f'check="{WHMCS_QUEUE}"' in line
        )
        assert float(line.rsplit(" ", 1)[1]) == expected
        page = serve.get("/").text
        assert 'data-state="critical"' in page
        assert "whmcs.queue_size = 57 requests (critical &gt; 50)" in page  # an open incident
        assert serve.stop() == 0

    output = serve.output()
    assert "stopped by SIGTERM" in output
    assert "Traceback" not in output
    assert not any(alive(pid) for pid in zygotes), "the round process outlived the runner"
    assert list(temp.iterdir()) == [], "temp files left behind"
    rounds = [line for line in output.splitlines() if ": round " in line]
    assert not (results / "history.db-wal").exists()  # checkpointed and closed
    with contextlib.closing(sqlite3.connect(results / "history.db")) as db:
        runs = db.execute("SELECT count(*) FROM synthetic_runs").fetchone()[0]
        queue = db.execute(
            "SELECT value FROM synthetic_results WHERE check_id = ? ORDER BY at", (WHMCS_QUEUE,)
        ).fetchall()
    assert runs == len(rounds)  # every round written before the runner ended
    assert queue[-1] == (expected,)


HANGING_CHECKS = """
import pytest

LENGTH = 10**13


@pytest.mark.metric("t.first", unit="requests")
@pytest.mark.critical("> 10")
def check_first():
    return 3


@pytest.mark.metric("t.hangs", unit="requests")
@pytest.mark.critical("> 10")
def check_hangs():
    # sum() over a range runs in C holding the interpreter (for hours): neither
    # the check's own timer nor its process's watchdog thread can run.
    return sum(range(LENGTH))


@pytest.mark.metric("t.after", unit="requests")
@pytest.mark.critical("> 10")
def check_after():
    return 2
"""


def hanging_project(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "check_hang.py").write_text(HANGING_CHECKS, encoding="utf-8")
    config = tmp_path / "synthetic.toml"
    config.write_text(
        'checks = ["checks"]\nhistory = "history.db"\n\n'
        '[environments.sandbox]\nbase_url = "http://127.0.0.1:9"\ncheck_timeout_s = 1\n',
        encoding="utf-8",
    )
    return config


def test_a_round_that_hangs_in_c_is_stopped_and_keeps_what_finished(tmp_path: Path) -> None:
    config = hanging_project(tmp_path)
    with serving(
        tmp_path, "--config", str(config), "--every", "1s", "--rounds", "2", "--alerts", "off"
    ) as serve:
        assert serve.process.wait(60) == 0
    output = serve.output()
    assert output.count("its process was stopped: checks/check_hang.py::check_hangs did not") == 2
    with contextlib.closing(sqlite3.connect(tmp_path / "history.db")) as db:
        rows = db.execute(
            "SELECT run_id, check_id, severity, reason FROM synthetic_results ORDER BY at"
        ).fetchall()
        runs = db.execute("SELECT worst, complete FROM synthetic_runs").fetchall()
    assert runs == [("unknown", 0), ("unknown", 0)]  # two rounds, neither vouches
    for run_id in {row[0] for row in rows}:
        found = {check: (severity, reason) for r, check, severity, reason in rows if r == run_id}
        assert found["checks/check_hang.py::check_first"][0] == "ok"  # kept
        severity, reason = found["checks/check_hang.py::check_hangs"]
        assert severity == "unknown"
        assert "ran past its deadline (1 s) and did not stop; its round's process was stopped" in (
            reason
        )
        severity, reason = found["checks/check_hang.py::check_after"]
        assert severity == "unknown"
        assert reason.startswith("t.after: not run: the round was stopped")


def test_run_appends_to_the_history_the_config_names(tmp_path: Path) -> None:
    config = hanging_project(tmp_path)
    (tmp_path / "checks" / "check_hang.py").write_text(
        HANGING_CHECKS.replace("10**13", "3"), encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "synthetic", "run", "--config", str(config), "--alerts=off"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = json.loads((tmp_path / "synthetic-results" / "results.json").read_text())
    with contextlib.closing(sqlite3.connect(tmp_path / "history.db")) as db:
        rows = db.execute(
            "SELECT run_id, check_id, severity, value FROM synthetic_results"
        ).fetchall()
    assert sorted(rows) == sorted(
        (written["run_id"], c["id"], c["severity"], c["value"]) for c in written["checks"]
    )


class Forwarder:
    """A loopback TCP forwarder that can be cut (connections reset, new ones refused)
    and restored on the same port: a database that goes away and comes back."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._live: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown first: close alone leaves a listener that a thread blocked in
            # accept() still holds, and connections would still be accepted.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in self._live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._live.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._live += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_a_history_store_that_goes_away_costs_no_round(
    tmp_path: Path, sandbox: Sandbox, postgres_server: PostgresServer
) -> None:
    name = f"history_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    assert postgres_server.port is not None
    forwarder = Forwarder(postgres_server.port)
    password = postgres_server.admin_dsn.split("@")[0].rsplit(":", 1)[1]
    url = postgres_server.admin_dsn.rsplit("@", 1)[0] + f"@127.0.0.1:{forwarder.port}/{name}"
    config = tmp_path / "synthetic.toml"
    config.write_text(
        f'checks = ["{REPO / "checks"}"]\nhistory = "{url}"\n\n'
        f'[environments.sandbox]\nbase_url = "{sandbox.url}"\n'
        f'metrics_url = "{sandbox.url}/metrics"\n',
        encoding="utf-8",
    )
    try:
        with serving(tmp_path, "--config", str(config), "--every", "1s", "--alerts=off") as serve:
            serve.wait_rounds(2)
            forwarder.cut()
            serve.wait_for(lambda: bool(serve.get("/healthz").json()["history"]))
            cut_at = serve.rounds()
            serve.wait_rounds(cut_at + 2)  # rounds go on without their history
            metrics = serve.get("/metrics").text
            assert 'synthetic_history_up{environment="sandbox"} 0.0' in metrics, (
                serve.get("/healthz").text,
                [line for line in metrics.splitlines() if "history" in line],
            )
            forwarder.restore()
            serve.wait_for(lambda: serve.get("/healthz").json()["history"] is None, 40)
            assert serve.stop() == 0
        output = serve.output()
        rounds = [line for line in output.splitlines() if ": round " in line]
        assert all("OK" in line or "WARNING" in line for line in rounds), rounds
        warnings = [line for line in output.splitlines() if "history: cannot" in line]
        assert warnings, output
        assert password not in output  # the URL's password is masked in the warning
        with psycopg.connect(postgres_server.admin_dsn.rsplit("/", 1)[0] + f"/{name}") as db:
            runs = db.execute("SELECT count(*) FROM synthetic_runs").fetchone()
        assert runs == (len(rounds),)  # the rounds of the outage written once it was back
    finally:
        forwarder.cut()
        with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


SLOW_CHECKS = """
import os
import time

import pytest


@pytest.mark.metric("t.slow", unit="requests")
@pytest.mark.critical("> 10")
def check_slow():
    with open(os.environ["SERVE_TEST_STARTED"], "a") as started:
        started.write("started\\n")
    time.sleep(2.5)  # longer than the period: every round overruns
    return 1
"""


def test_overrunning_rounds_follow_at_once_never_overlap_and_a_stop_finishes_the_round(
    tmp_path: Path,
) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "check_slow.py").write_text(SLOW_CHECKS, encoding="utf-8")
    config = tmp_path / "synthetic.toml"
    config.write_text(
        'checks = ["checks"]\nhistory = "history.db"\n\n'
        '[environments.sandbox]\nbase_url = "http://127.0.0.1:9"\n',
        encoding="utf-8",
    )
    started = tmp_path / "started.txt"
    every_s = 2.0
    with serving(
        tmp_path, "--config", str(config), "--every", f"{every_s:g}s", "--alerts=off",
        env={"SERVE_TEST_STARTED": str(started)},
    ) as serve:  # fmt: skip
        serve.wait_rounds(2, timeout_s=60)
        metrics = serve.get("/metrics").text
        assert 'synthetic_round_overran{environment="sandbox"} 1.0' in metrics
        overruns = re.search(
            r'synthetic_round_overruns_total\{environment="sandbox"\} (\S+)', metrics
        )
        assert overruns is not None
        assert float(overruns.group(1)) >= 2
        assert 'id="overrun"' in serve.get("/").text
        # SIGTERM while a round is under way: its check has started and sleeps.
        finished = serve.rounds()
        serve.wait_for(lambda: started.read_text().count("started") > finished, 30)
        assert serve.stop() == 0

    output = serve.output()
    assert "stopped by SIGTERM" in output
    rounds = [line for line in output.splitlines() if ": round " in line]
    assert all("overran its 2s period, the next starts at once" in line for line in rounds)
    assert len(rounds) == finished + 1  # the round under way when stopped was finished
    with contextlib.closing(sqlite3.connect(tmp_path / "history.db")) as db:
        runs = db.execute(
            "SELECT started_at, finished_at, complete, worst FROM synthetic_runs "
            "ORDER BY started_at"
        ).fetchall()
    assert len(runs) == len(rounds)
    assert all(complete == 1 and worst == "ok" for _, _, complete, worst in runs), runs
    for (_, previous_end, _, _), (start, _, _, _) in itertools.pairwise(runs):
        assert start >= previous_end  # never overlapping
        assert start - previous_end < every_s  # not waiting a period after an overrun
