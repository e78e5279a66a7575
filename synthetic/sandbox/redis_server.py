"""A throw-away ``redis-server`` on loopback, for the tests and ``synthetic demo``.

`RedisServer` starts the Debian ``redis-server`` binary on a free loopback
port, without persistence unless asked for, and stops it by PID;
`seed_bullmq` fills it with BullMQ queues (BullMQ 5/6 key layout) using
plain Redis commands, so the demo's ``bullmq.*`` checks have something
realistic to count::

    with RedisServer(maxmemory="64mb", maxmemory_policy="noeviction") as server:
        seed_bullmq(server.url, "bull", ["email", "provisioning"])
        ...  # point redis_url at server.url
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

if TYPE_CHECKING:
    import redis
    from redis.typing import EncodableT, FieldT

from synthetic.sandbox.processes import LOOPBACK, free_port, log_tail

START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
_PORT_ATTEMPTS: Final = 3
_KNOWN_LOCATIONS: Final = (
    "/usr/bin/redis-server",
    "/usr/sbin/redis-server",
    "/usr/local/bin/redis-server",
)


class RedisServerError(RuntimeError):
    """``redis-server`` could not be found, started or reached (one line)."""


def find_redis_server() -> str | None:
    """The path of the ``redis-server`` executable, or None when it is not installed."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in _KNOWN_LOCATIONS:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``redis-server`` on ``127.0.0.1`` and a free port; a context manager.

    No persistence (``--save ''``, no AOF) unless ``appendonly``; its files
    and log go to ``directory`` (a temporary directory, removed on `stop`, by
    default). ``maxmemory`` (bytes, or Redis' own spelling such as ``"4mb"``)
    and ``maxmemory_policy`` are passed through when given. `start` waits, at
    most ``start_timeout_s``, for the server to answer PING; `stop` ends
    the process it started, by PID; `restart` does both on the same port and
    directory, so with ``appendonly`` the data survives, as in a real restart.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        maxmemory: int | str | None = None,
        maxmemory_policy: str | None = None,
        executable: str | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        appendonly: bool = False,
    ) -> None:
        self.directory = directory
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.executable = executable
        self.start_timeout_s = start_timeout_s
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._started_in: Path | None = None

    def __repr__(self) -> str:
        state = f"pid {self.pid}, port {self._port}" if self.running else "stopped"
        return f"RedisServer({state})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def port(self) -> int:
        if self._port is None or not self.running:
            raise RedisServerError("redis-server is not running")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def command(self, port: int, directory: Path) -> list[str]:
        executable = self.executable or find_redis_server()
        if executable is None:
            raise RedisServerError(
                "redis-server is not installed (apt-get install -y redis-server)"
            )
        args = [
            executable,
            "--bind",
            LOOPBACK,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--dir",
            str(directory),
        ]
        if self.maxmemory is not None:
            args += ["--maxmemory", str(self.maxmemory)]
        if self.maxmemory_policy is not None:
            args += ["--maxmemory-policy", self.maxmemory_policy]
        return args

    def start(self) -> Self:
        if self.running:
            return self
        directory = self.directory
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="synthetic-redis-")
            directory = Path(self._tmp.name)
        directory.mkdir(parents=True, exist_ok=True)
        self._started_in = directory
        try:
            self._start_in(directory)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_in(self, directory: Path) -> None:
        # Another process may take the free port before redis-server binds
        # it: then redis-server exits at once, and we try another port.
        for _attempt in range(_PORT_ATTEMPTS):
            port = free_port()
            if self._launch(port, directory, log_mode="wb"):
                return
        raise self._exited_early(port, directory)

    def _launch(self, port: int, directory: Path, *, log_mode: str) -> bool:
        """Run redis-server on ``port``: True once it answers PING, False if it exited first."""
        args = self.command(port, directory)
        log = directory / f"redis-{port}.log"
        try:
            with log.open(log_mode) as log_handle:
                process = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=log_handle, stderr=subprocess.STDOUT
                )
        except OSError as exc:
            raise RedisServerError(f"cannot run {args[0]}: {exc.strerror}") from None
        self._process, self._port = process, port
        deadline = time.monotonic() + self.start_timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            if _answers_ping(port):
                return True
            time.sleep(0.02)
        if process.poll() is None:
            raise RedisServerError(
                f"redis-server (pid {process.pid}) did not answer PING on port {port} "
                f"within {self.start_timeout_s:g} s; log: {log_tail(log)}"
            )
        return False

    def _exited_early(self, port: int, directory: Path) -> RedisServerError:
        status = self._process.returncode if self._process is not None else None
        return RedisServerError(
            f"redis-server exited with status {status} before answering PING; "
            f"log: {log_tail(directory / f'redis-{port}.log')}"
        )

    def restart(self) -> Self:
        """Stop the server and start it again on the same port and directory.

        Clients keep their URL, as after a real restart; with ``appendonly``
        the data written before the stop (SIGTERM flushes the AOF) is loaded again.
        """
        port, directory = self.port, self._started_in
        if directory is None:  # not reached: a running server went through start
            raise RedisServerError("redis-server is not running")
        self._end_process()
        try:
            # The log is appended to: the one of the first start stays readable.
            if not self._launch(port, directory, log_mode="ab"):
                raise self._exited_early(port, directory)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the process this object started (SIGTERM, then SIGKILL), by its PID."""
        self._end_process()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None
        self._started_in = None

    def _end_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def seed_bullmq(
    url: str,
    prefix: str,
    queues: Iterable[str],
    *,
    waiting: int = 3,
    failed: int = 1,
    completed: int = 8,
) -> dict[str, dict[str, int]]:
    """Create BullMQ queues as BullMQ 5/6 leaves them, with plain Redis commands.

    Per queue: ``waiting`` jobs in the ``wait`` list (and the ``marker``
    that wakes workers), ``failed`` jobs in the ``failed`` sorted set,
    ``completed`` jobs in ``completed``; each job a hash ``<prefix>:<queue>:<id>``,
    plus ``id``, ``meta`` and the ``events`` stream. Returns what was added
    per queue (``{"wait": 3, "failed": 1, "completed": 8}``), added to what
    was there.
    """
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    seeded: dict[str, dict[str, int]] = {}
    try:
        for queue in queues:
            seeded[queue] = _seed_queue(
                client, f"{prefix}:{queue}", waiting=waiting, failed=failed, completed=completed
            )
    finally:
        client.close()
    return seeded


def _seed_queue(
    client: redis.Redis, key: str, *, waiting: int, failed: int, completed: int
) -> dict[str, int]:
    now_ms = int(time.time() * 1000)
    total = waiting + failed + completed
    # Job ids come from the queue's counter, as Queue.add takes them.
    job_id = int(client.incrby(f"{key}:id", total)) - total
    pipe = client.pipeline(transaction=True)
    pipe.hsetnx(f"{key}:meta", "opts.maxLenEvents", "10000")
    finished = [("completed", n) for n in range(completed)] + [("failed", n) for n in range(failed)]
    for state, n in finished:
        job_id += 1
        started = now_ms - (len(finished) - n) * 60_000
        fields: dict[FieldT, EncodableT] = {
            **_job_fields(state, job_id, started - 250),
            "processedOn": started,
            "finishedOn": started + 120,
            "atm": 1,
            "ats": 1,
        }
        if state == "failed":
            fields["failedReason"] = "WHMCS API timeout after 30000 ms"
            fields["stacktrace"] = json.dumps(["Error: WHMCS API timeout after 30000 ms"])
        else:
            fields["returnvalue"] = json.dumps({"ok": True})
        pipe.hset(f"{key}:{job_id}", mapping=fields)
        pipe.zadd(f"{key}:{state}", {str(job_id): started + 120})
    for _ in range(waiting):
        job_id += 1
        pipe.hset(f"{key}:{job_id}", mapping=_job_fields("waiting", job_id, now_ms))
        # BullMQ adds with LPUSH; workers take from the right (LMOVE ... RIGHT LEFT).
        pipe.lpush(f"{key}:wait", str(job_id))
        pipe.xadd(
            f"{key}:events",
            {"event": "added", "jobId": str(job_id), "name": "send"},
            maxlen=10000,
            approximate=True,
        )
        pipe.xadd(f"{key}:events", {"event": "waiting", "jobId": str(job_id)}, maxlen=10000)
    if waiting:
        pipe.zadd(f"{key}:marker", {"0": 0})
    pipe.execute()
    return {"wait": waiting, "failed": failed, "completed": completed}


def _job_fields(state: str, job_id: int, timestamp_ms: int) -> dict[FieldT, EncodableT]:
    return {
        "name": "send",
        "data": json.dumps({"demo": True, "state": state, "n": job_id}),
        "opts": json.dumps({"attempts": 1, "delay": 0}),
        "timestamp": timestamp_ms,
        "delay": 0,
        "priority": 0,
    }
