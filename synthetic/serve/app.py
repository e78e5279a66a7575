"""The web edge of `synthetic serve`: routes, authentication, security headers.

A Starlette application served by uvicorn. The routes read a `Snapshot` of
the runner (`synthetic.serve.view`) and, for the history, the store; they
never touch a round. Every response carries a strict Content-Security-Policy
(no script, the page's own stylesheet by hash, nothing from elsewhere); with
a bearer token or basic auth configured, every route but ``/healthz`` needs
it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synthetic.history import HistoryError, HistoryStore
from synthetic.history.model import epoch
from synthetic.redact import Masker
from synthetic.serve.metrics import CONTENT_TYPE, exposition
from synthetic.serve.page import STYLE_HASH, Pages
from synthetic.serve.series import Series
from synthetic.serve.settings import ServeSettings
from synthetic.serve.view import Board
from synthetic.units import parse_duration

CSP = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
OPEN_PATHS = frozenset({"/healthz"})
MAX_HISTORY_ROWS = 100_000
DEFAULT_HISTORY_ROWS = 10_000


@dataclass
class Sources:
    """What the routes read: the runner's board, the history, the masker."""

    board: Board
    history: HistoryStore | None
    series: Series
    masker: Masker
    clock: Callable[[], float] = time.time


def create_app(sources: Sources, settings: ServeSettings) -> ASGIApp:
    pages = Pages(sources.masker)

    def index(request: Request) -> Response:
        snapshot = sources.board.snapshot()
        now = sources.clock()
        checks = snapshot.run.checks if snapshot.run else ()
        series = {c.id: sources.series.points(c.id, now=now) for c in checks}
        return HTMLResponse(pages.index(snapshot, series, now=now))

    def check(request: Request) -> Response:
        snapshot = sources.board.snapshot()
        check_id = unquote(request.path_params["check_id"])
        found = [c for c in (snapshot.run.checks if snapshot.run else ()) if c.id == check_id]
        if not found:
            return _text(404, f"no check {check_id!r} in the last round", sources.masker)
        now = sources.clock()
        rows = []
        if sources.history is not None:
            try:
                rows = sources.history.read(
                    since=now - 24 * 3600,
                    check=check_id,
                    environment=snapshot.environment,
                    limit=MAX_HISTORY_ROWS,
                )
            except HistoryError:
                rows = []  # the page shows the history's warning from the board
        return HTMLResponse(pages.check(snapshot, found[0], rows, now=now))

    def metrics(request: Request) -> Response:
        return Response(exposition(sources.board.snapshot()), media_type=CONTENT_TYPE)

    def results(request: Request) -> Response:
        run = sources.board.snapshot().run
        if run is None:
            return _json(503, {"error": "no round has finished yet"}, sources.masker)
        return _json(200, run.results_document(), sources.masker)

    def history(request: Request) -> Response:
        if sources.history is None:
            return _json(404, {"error": "no history store"}, sources.masker)
        now = sources.clock()
        try:
            since = _since(request.query_params.get("since", "24h"), now)
            limit = int(request.query_params.get("limit", DEFAULT_HISTORY_ROWS))
            if not 1 <= limit <= MAX_HISTORY_ROWS:
                raise ValueError(f"limit: expected 1 to {MAX_HISTORY_ROWS}")
        except ValueError as exc:
            return _json(400, {"error": str(exc)}, sources.masker)
        try:
            rows = sources.history.read(
                since=since,
                check=request.query_params.get("check") or None,
                environment=request.query_params.get("environment")
                or sources.board.snapshot().environment,
                location=request.query_params.get("location"),
                limit=limit,
            )
        except HistoryError as exc:
            return _json(503, {"error": str(exc)}, sources.masker)
        return _json(200, {"since": since, "rows": [r.to_json() for r in rows]}, sources.masker)

    def healthz(request: Request) -> Response:
        snapshot = sources.board.snapshot()
        now = sources.clock()
        healthy = snapshot.healthy(now)
        body = {
            "status": "ok" if healthy else "stale",
            "last_round_age_s": snapshot.age_s(now),
            "rounds": snapshot.rounds,
            "every_s": snapshot.every_s,
            "history": snapshot.history_warning,
        }
        return _json(200 if healthy else 503, body, sources.masker)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/checks/{check_id:path}", check),
            Route("/metrics", metrics),
            Route("/api/results", results),
            Route("/api/history", history),
            Route("/healthz", healthz),
        ]
    )
    return SecurityHeaders(Authenticate(app, settings))


def _since(text: str, now: float) -> float:
    """``since``: a duration back from now (``24h``), an ISO time, or epoch seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text[:1].isdigit() and "T" not in text and "-" not in text:
        return now - parse_duration(text, where="since")
    try:
        return epoch(text)
    except ValueError:
        raise ValueError(
            "since: expected a duration (24h), an ISO 8601 time or epoch seconds"
        ) from None


def _json(status: int, document: Any, masker: Masker) -> Response:
    body = json.dumps(masker.data(document), ensure_ascii=False, default=str)
    return Response(body, status_code=status, media_type="application/json")


def _text(status: int, text: str, masker: Masker) -> Response:
    return Response(masker.text(text), status_code=status, media_type="text/plain")


class SecurityHeaders:
    """Every response, errors included, with the headers above."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k not in names]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, sending)


class Authenticate:
    """A bearer token or basic auth on every route but `OPEN_PATHS`."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        s = self.settings
        needed = s.bearer_token or s.username
        if scope["type"] != "http" or not needed or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        if self._allowed(header):
            await self.app(scope, receive, send)
            return
        challenge = 'Bearer realm="synthetic"' if s.bearer_token else 'Basic realm="synthetic"'
        response = JSONResponse(
            {"error": "authentication required"},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)

    def _allowed(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        s = self.settings
        if s.bearer_token:
            return scheme.lower() == "bearer" and _same(credentials.strip(), s.bearer_token)
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        # Both compared, whatever the first gives: the time says nothing of which was wrong.
        same_user = _same(user, s.username or "")
        same_password = _same(password, s.password or "")
        return same_user and same_password


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
