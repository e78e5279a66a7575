"""The HTTP client checks use: httpx, retried by tenacity within a time budget, bounded.

One `httpx.Client` per process holds the connection pool; each check gets a
`BFFClient` view of it whose requests carry an ``X-Correlation-Id`` naming the
run and the check, so the check's requests can be found in the portal's logs.
Snapshots (``client.snapshot("/health/queues")``) are fetched once per process
and shared by every check that reads them, failures included.

Every request is bounded, whatever the target does:

- time: one deadline of ``timeout_s`` for connect, headers and body together
  (`synthetic.measure.http_deadline`); retries only within ``retry_budget_s``;
- size: the body, decompressed, at most ``max_body_bytes`` (`synthetic.measure.http_body`);
- redirects: followed here, not by httpx, and only within the request's own
  origin (scheme, host, port), at most `MAX_REDIRECTS`, unless
  ``follow_redirects = "never"``; any other is `ResponseRejected`, and no
  request goes to its Location. The environment's headers (which may hold
  secrets) go only to its target's origin.
"""

from __future__ import annotations

import functools
import gc
import itertools
import re
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from synthetic.config import Environment
from synthetic.errors import MeasurementError, ResponseRejected, Unreachable
from synthetic.limits import MAX_REDIRECTS
from synthetic.measure.http_body import ACCEPT_ENCODING, BodyLimits, read_body
from synthetic.measure.http_deadline import Deadline, bound_sockets, deadline_scope
from synthetic.measure.jsonbody import parse_json
from synthetic.redact import Masker
from synthetic.text import printable
from synthetic.version import __version__
from synthetic.waits import waiting_on

RETRY_STATUSES = frozenset({502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CORRELATION_HEADER = "X-Correlation-Id"
USER_AGENT = f"synthetic/{__version__}"
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._:\-\[\]]+")
_SHOWN = 120  # characters of a URL or Location in a reason
_PACK_FROM = 1024 * 1024  # a snapshot's body this long is kept compressed
# Headers that describe a request's body (dropped with it), or that the client
# sets afresh for each request (the cookie jar may have learned from a redirect).
_NOT_CARRIED = frozenset({"content-length", "content-type", "transfer-encoding", "cookie"})
# What the body we read no longer has: its encoding (it is decoded) and length.
_NOT_KEPT = frozenset({"content-encoding", "content-length", "transfer-encoding"})
# Where a redirect's Location is kept away from httpx (see `_hold_location`).
_HELD_LOCATION = "x-synthetic-held-location"


class Snapshot:
    """One response, kept for every check of the run that reads it; read-only.

    A body of a megabyte or more is kept compressed when that halves it (a run
    keeps one per endpoint, and the megabytes a hostile target sends are mostly
    repetition): ``text`` gives it whole, anew each time, so nothing that
    outlives a check (an error's traceback) keeps a copy of it.
    """

    __slots__ = ("_kept", "content_type", "elapsed_ms", "path", "size", "status_code")

    path: str
    status_code: int
    content_type: str
    elapsed_ms: float
    size: int  # characters of the body's text
    _kept: str | bytes

    def __init__(
        self, path: str, status_code: int, text: str, content_type: str, elapsed_ms: float
    ) -> None:
        kept: str | bytes = text
        if len(text) >= _PACK_FROM:
            packed = zlib.compress(text.encode(), 1)
            kept = packed if len(packed) <= len(text) // 2 else text
        for name, value in (
            ("path", path),
            ("status_code", status_code),
            ("content_type", content_type),
            ("elapsed_ms", elapsed_ms),
            ("size", len(text)),
            ("_kept", kept),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Snapshot is read-only: cannot set {name}")

    def __repr__(self) -> str:
        return f"Snapshot(GET {self.path} -> HTTP {self.status_code}, {self.content_type!r})"

    @property
    def text(self) -> str:
        kept = self._kept
        return kept if isinstance(kept, str) else zlib.decompress(kept).decode()

    def json(self) -> Any:
        """The body as JSON: a `MeasurementError` naming the path when it is not JSON
        (or is JSON the monitor does not read: see `synthetic.measure.jsonbody`)."""
        return parse_json(self.text, where=f"GET {self.path}", content_type=self.content_type)

    def ok_json(self) -> Any:
        """The JSON body of a 2xx response; a `MeasurementError` for any other status."""
        if not 200 <= self.status_code < 300:
            raise MeasurementError(f"GET {self.path} returned HTTP {self.status_code}")
        return self.json()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, made once per process: loading the CA bundle
    costs more CPU than a round's plain-HTTP requests (`synthetic serve` makes it
    before it forks its rounds)."""
    return httpx.create_ssl_context()


def _is_transient(exc: BaseException) -> bool:
    """A connection refused or reset may not happen again; a timeout has already
    had the whole deadline, and waiting again would multiply it."""
    return isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.TimeoutException
    )


def _last_outcome(state: RetryCallState) -> httpx.Response:
    # Out of retries: hand back the last response (a 503 is still an answer)
    # or raise the last error.
    assert state.outcome is not None
    result: httpx.Response = state.outcome.result()
    return result


def _hold_location(response: httpx.Response) -> None:
    """Hide a redirect's Location from httpx, which parses it (and raises on a bad
    one) even when it does not follow it; `HttpSession._exchange` decides."""
    headers = response.headers
    headers.pop(_HELD_LOCATION, None)
    if response.status_code in REDIRECT_STATUSES and "location" in headers:
        headers[_HELD_LOCATION] = headers.pop("location")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class HttpSession:
    """The per-process pool and snapshot cache for one environment.

    The environment's ``headers`` (which may hold secrets) go only to its
    target's origin: ``base_url``'s, or ``metrics_url``'s when there is no
    ``base_url`` (then the metrics endpoint is the configured target). A
    ``metrics_url`` on another host or port gets the correlation id only.
    ``masker`` masks what a target sends back into a reason (a Location).
    """

    def __init__(
        self, environment: Environment, *, run_id: str, masker: Masker | None = None
    ) -> None:
        target = environment.base_url or environment.metrics_url
        if not target:
            raise ValueError("HttpSession needs an environment with base_url or metrics_url")
        self.environment = environment
        self.run_id = run_id
        self.client = bound_sockets(
            httpx.Client(
                base_url=environment.base_url or "",
                # The portal's logs show it: the log checks leave the monitor's own out.
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
                # Per socket operation; the request's deadline cuts each to what is left.
                timeout=httpx.Timeout(environment.timeout_s),
                follow_redirects=False,  # followed in `_exchange`, within the origin
                event_hooks={"response": [_hold_location]},
                verify=tls_context(),
            )
        )
        self._target = _origin(httpx.URL(target))
        self._limits = BodyLimits(max_bytes=environment.max_body_bytes)
        self._masker = masker or Masker()
        self._snapshots: dict[str, Snapshot | BaseException] = {}
        self._lock = threading.Lock()
        self._large_body_read = False

    def close(self) -> None:
        self.client.close()

    def release_large_bodies(self) -> None:
        """Free now what a check made of a body of megabytes (called after each check).

        A check that failed leaves its frames, and the body's text and parsed
        values they hold, in reference cycles with its error's traceback, until
        Python's cycle collector runs; that counts objects, not bytes, so several
        checks' copies of a large body could pile up before it does.
        """
        if self._large_body_read:
            self._large_body_read = False
            gc.collect()

    def correlation_id(self, check: str) -> str:
        return _UNSAFE_ID.sub("_", f"synthetic-{self.run_id}-{check}")[:200]

    def request(
        self,
        method: str,
        path: str,
        *,
        check: str,
        retry_statuses: bool = True,
        keep_body: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, retried on connection errors (refused, reset) and (unless
        ``retry_statuses`` is false) on 502/503/504; its body read within bounds
        (and, with ``keep_body=False``, not kept: the response's content is empty).

        Each attempt has a deadline of ``timeout_s`` for the whole exchange, and a
        timeout is not retried: a target that does not answer costs ``timeout_s``.
        A retry starts only within ``retry_budget_s`` and ends within it too, so
        the call takes at most ``max(timeout_s, retry_budget_s)``. A check that
        times its requests turns status retries off: a retried 503 would count
        the backoff as latency.
        """
        env = self.environment
        headers = {CORRELATION_HEADER: self.correlation_id(check)}
        url = httpx.URL(path)  # httpx merges a relative one into base_url: same origin
        if _origin(url if url.is_absolute_url else self.client.base_url) == self._target:
            headers.update(env.headers)
        headers.update(kwargs.pop("headers", {}))
        statuses = RETRY_STATUSES if retry_statuses else frozenset()
        budget_ends = time.monotonic() + env.retry_budget_s
        attempts = itertools.count(1)

        def attempt() -> httpx.Response:
            deadline = Deadline.after(env.timeout_s)
            left = budget_ends - time.monotonic()
            if next(attempts) > 1 and left < env.timeout_s:  # a retry ends within the budget
                deadline = Deadline.after(left, source="what was left of retry_budget_s")
            return self._exchange(method, path, headers, deadline, kwargs, keep_body)

        retrying = Retrying(
            retry=retry_if_exception(_is_transient)
            | retry_if_result(lambda r: r.status_code in statuses),
            stop=stop_after_attempt(env.retries + 1) | stop_before_delay(env.retry_budget_s),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
            retry_error_callback=_last_outcome,
            reraise=True,
        )
        with waiting_on("http", f"{method} {path}"):  # a stop in here blames the target
            response: httpx.Response = retrying(attempt)
        if len(response.content) >= _PACK_FROM:
            self._large_body_read = True
        return response

    def _exchange(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        deadline: Deadline,
        options: Mapping[str, Any],
        keep_body: bool,
    ) -> httpx.Response:
        """One attempt: the request, its same-origin redirects, the body, all by ``deadline``."""
        where = f"{method} {self._shown(path)}"
        with deadline_scope(deadline):
            request = self.client.build_request(method, path, headers=headers, **options)
            origin = _origin(request.url)
            for hop in itertools.count():
                response = self.client.send(request, stream=True)
                location = response.headers.get(_HELD_LOCATION)
                if location is None:
                    body = read_body(
                        response, self._limits, deadline=deadline, where=where, keep=keep_body
                    )
                    return _with_body(response, body)
                response.close()
                request = self._redirected(
                    request, response.status_code, location, origin, hop, where
                )
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _redirected(
        self,
        request: httpx.Request,
        status: int,
        location: str,
        origin: tuple[str, str, int | None],
        hop: int,
        where: str,
    ) -> httpx.Request:
        """The request a redirect asks for, when it may be followed; else `ResponseRejected`."""
        shown = self._shown(location)
        try:
            target = request.url.join(location)
        except httpx.InvalidURL:
            raise ResponseRejected(
                f"{where}: redirected ({status}) to an invalid Location ({shown}); not followed",
                url=where,
            ) from None
        if self.environment.follow_redirects == "never":
            why = "not followed (follow_redirects = never)"
        elif target.userinfo:
            why = "a URL with credentials, not followed"
        elif _origin(target) != origin:
            why = "another origin, not followed"
        elif hop >= MAX_REDIRECTS:
            why = f"more than {MAX_REDIRECTS} redirects, not followed"
        else:
            why = ""
        if why:
            raise ResponseRejected(f"{where}: redirected ({status}) to {shown}: {why}", url=where)
        method = request.method
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method = "GET"
        keep_body = method == request.method and status in (307, 308)
        carried = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in _NOT_CARRIED or (keep_body and name.lower() != "cookie")
        ]
        return self.client.build_request(
            method, target, headers=carried, content=request.content if keep_body else None
        )

    def _shown(self, text: str) -> str:
        """A URL or Location for a reason: masked, printable, cut."""
        return printable(self._masker.text(printable(text, 4 * _SHOWN)), _SHOWN)

    def snapshot(self, path: str, *, check: str) -> Snapshot:
        """GET ``path`` once per process; later callers get the same answer or error."""
        with self._lock:
            cached = self._snapshots.get(path)
            if cached is None:
                cached = self._fetch(path, check)
                self._snapshots[path] = cached
        if isinstance(cached, BaseException):
            raise cached.with_traceback(None)
        if cached.size >= _PACK_FROM:
            self._large_body_read = True
        return cached

    def _fetch(self, path: str, check: str) -> Snapshot | BaseException:
        started = time.perf_counter()
        try:
            response = self.request("GET", path, check=check)
        except (httpx.HTTPError, MeasurementError) as exc:
            return exc
        except BaseException:
            # The check was stopped mid-fetch (its time limit, Ctrl-C): the
            # checks after it are told so, not made to wait for it again.
            self._snapshots[path] = Unreachable(
                f"GET {self._shown(path)}: no answer before {check} was stopped waiting for it"
            )
            raise
        text = response.text
        status_code, content_type = response.status_code, response.headers.get("content-type", "")
        del response  # its body, as bytes: not kept while the text is packed
        return Snapshot(
            path=path,
            status_code=status_code,
            text=text[1:] if text.startswith("\ufeff") else text,
            content_type=content_type,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )


def _with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """``response`` with the ``body`` read from it (decoded): a plain, closed response."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _NOT_KEPT]
    extensions = {k: v for k, v in response.extensions.items() if k != "network_stream"}
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=extensions,
    )


class BFFClient:
    """A check's view of the portal's BFF: relative paths, its correlation id."""

    def __init__(self, session: HttpSession, *, check: str) -> None:
        self._session = session
        self.check = check
        self.correlation_id = session.correlation_id(check)

    @property
    def base_url(self) -> str:
        return str(self._session.client.base_url)

    def request(
        self,
        method: str,
        path: str,
        *,
        retry_statuses: bool = True,
        keep_body: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._session.request(
            method,
            path,
            check=self.check,
            retry_statuses=retry_statuses,
            keep_body=keep_body,
            **kwargs,
        )

    def get(
        self, path: str, *, retry_statuses: bool = True, keep_body: bool = True, **kwargs: Any
    ) -> httpx.Response:
        return self.request(
            "GET", path, retry_statuses=retry_statuses, keep_body=keep_body, **kwargs
        )

    def snapshot(self, path: str) -> Snapshot:
        return self._session.snapshot(path, check=self.check)

    def json(self, path: str) -> Any:
        """The JSON body of a 2xx answer to ``GET path``, shared within the process."""
        return self.snapshot(path).ok_json()
