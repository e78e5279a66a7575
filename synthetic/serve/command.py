"""``synthetic serve``: wire the round runner, the history, the loop and the web edge.

Start-up order: the config (one line on error), the listening socket (one
line if taken), the zygote (it collects the catalogue: a collection error is
one line), the history writer, the web server's thread, then rounds until
stopped. Shutting down undoes it in reverse and leaves nothing running.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from synthetic.config import SANDBOX, SANDBOX_DEFAULT_PORT, Config, load_config
from synthetic.errors import ConfigError
from synthetic.history import HistoryStore, history_location, open_history
from synthetic.history.model import epoch
from synthetic.history.writer import HistoryWriter
from synthetic.results import RunResult
from synthetic.serve.loop import Loop, Stop
from synthetic.serve.runner import RoundRunner, ZygoteError
from synthetic.serve.series import WINDOW_S, Series
from synthetic.serve.settings import ServeSettings, is_loopback, parse_listen
from synthetic.serve.view import Board
from synthetic.watch import stop_signals

UNKNOWN = 3
# Each round runs its checks in its own process: no xdist worker to start,
# the zygote is its watchdog; nothing of pytest's cache is written per round.
ROUND_ARGS = ["--numprocesses=0", "-p", "no:cacheprovider"]
SERVER_STOP_S = 5.0


def say(line: str) -> None:
    print(f"synthetic serve: {line}", flush=True)


def serve(args: argparse.Namespace, pytest_args: list[str]) -> int:
    try:
        config = load_config(path=args.config, environment=args.env, search_from=Path.cwd())
        settings = _settings(config.serve, args)
    except (ConfigError, ValueError) as exc:
        print(f"synthetic serve: error: {exc}", file=sys.stderr)
        return UNKNOWN
    mode = args.alerts or os.environ.get("SYNTHETIC_ALERTS") or "dry-run"
    results_dir = Path.cwd() / (
        args.results_dir or os.environ.get("SYNTHETIC_RESULTS_DIR") or "synthetic-results"
    )
    try:
        listener = _listen(settings)
    except OSError as exc:
        print(
            f"synthetic serve: error: cannot listen on {settings.host}:{settings.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return UNKNOWN
    runner = RoundRunner(
        pytest_args=[*pytest_args, *ROUND_ARGS, f"--alerts={mode}"],
        log=results_dir / "serve" / "round.log",
        after_verdict_s=_after_verdict_s(config),
        environment=config.environment.name,
    )
    # A stop from here on (even while the zygote warms up) ends the runner cleanly.
    stop = Stop(runner.abort)
    with stop_signals(stop), contextlib.ExitStack() as cleanup:
        cleanup.callback(listener.close)
        cleanup.callback(runner.close)
        began = time.monotonic()
        try:
            runner.start()
        except ZygoteError as exc:
            print(f"synthetic serve: error: {config.masker.text(str(exc))}", file=sys.stderr)
            return UNKNOWN
        board = Board(config.environment.name, settings.every_s)
        series = Series()
        store = open_history(
            config.history,
            results_dir=results_dir,
            describe=config.masker.text(history_location(config.history, results_dir)),
        )
        writer = _writer(store, config, board, series)
        cleanup.callback(writer.close)
        from synthetic.serve.app import Sources, create_app

        app = create_app(Sources(board, store, series, config.masker), settings)
        server, thread = _start_server(app, listener)
        cleanup.callback(thread.join, SERVER_STOP_S)
        cleanup.callback(setattr, server, "should_exit", True)
        host, port = listener.getsockname()[:2]
        say(
            f"http://{_url_host(host)}:{port} ({config.environment.name}, every "
            f"{settings.every_s:g}s, alerts {mode}; history: {store.describe}; "
            f"ready in {time.monotonic() - began:.1f}s)"
        )
        if not is_loopback(settings.host) and not (settings.bearer_token or settings.username):
            say(f"warning: listening on {settings.host} without authentication")
        started = _embedded_sandbox(config, cleanup)
        if started:
            say(started)
        loop = Loop(
            runner=runner,
            board=board,
            series=series,
            writer=writer,
            config=config,
            alerts_mode=mode,
            results_dir=results_dir,
            every_s=settings.every_s,
            say=say,
        )
        return loop.run(args.rounds, stop)


def _embedded_sandbox(config: Config, stack: contextlib.ExitStack) -> str | None:
    """`serve --env sandbox` with no sandbox where it points (the default
    127.0.0.1:4000): one is started in this process, as the demo does."""
    env = config.environment
    if env.name != SANDBOX or not env.base_url:
        return None
    from urllib.parse import urlsplit

    address = urlsplit(env.base_url)
    if address.hostname not in ("127.0.0.1", "localhost") or address.port != SANDBOX_DEFAULT_PORT:
        return None
    try:
        socket.create_connection(("127.0.0.1", SANDBOX_DEFAULT_PORT), timeout=1.0).close()
        return None  # one is running already
    except OSError:
        pass
    from synthetic.sandbox import Sandbox

    try:
        stack.enter_context(Sandbox("healthy", port=SANDBOX_DEFAULT_PORT))
    except (OSError, ConfigError):
        return None  # the rounds will say what they find there
    return (
        f"no sandbox answered at {env.base_url}: started one (scenario healthy; "
        "PUT /__sandbox/scenario switches it, as for `synthetic sandbox`)"
    )


def _after_verdict_s(config: Config) -> float:
    """How long a round may go on after its verdict: state, exporters, and each
    receiver's delivery budget (they are bounded by them)."""
    return 30.0 + sum(receiver.budget_s for receiver in config.alerts.receivers.values())


def _settings(configured: ServeSettings, args: argparse.Namespace) -> ServeSettings:
    host, port = parse_listen(args.listen) if args.listen else (configured.host, configured.port)
    every_s = args.every if args.every is not None else configured.every_s
    if every_s <= 0:
        raise ValueError("--every: must be more than 0 s")
    return ServeSettings(
        host=host,
        port=port,
        every_s=every_s,
        bearer_token=configured.bearer_token,
        username=configured.username,
        password=configured.password,
    )


def _listen(settings: ServeSettings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((settings.host, settings.port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _start_server(app: ASGIApp, listener: socket.socket) -> tuple[Any, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            date_header=False,
        )
    )
    # Not the main thread: uvicorn leaves the signals alone there; the loop owns them.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="synthetic-web", daemon=True
    )
    thread.start()
    return server, thread


def _writer(store: HistoryStore, config: Config, board: Board, series: Series) -> HistoryWriter:
    environment = config.environment.name
    seeded: list[bool] = []

    def first() -> None:
        # The day's sparklines, from before this runner started.
        series.add_rows(store.read(since=time.time() - WINDOW_S, environment=environment))

    def after_write(run: RunResult) -> None:
        if seeded:
            return
        seeded.append(True)
        at = epoch(run.finished_at)
        found = {}
        for check in run.checks:
            began = store.streak_start(
                check=check.id,
                environment=environment,
                location=run.location or "",
                severity=check.severity.value,
                at=at,
            )
            if began is not None and began < at:
                found[check.id] = began
        board.seed_since(found)

    return HistoryWriter(
        store,
        retention_s=config.history_retention_s,
        first=first,
        after_write=after_write,
    )
