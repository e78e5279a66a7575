"""The HTTP client checks use: httpx, retried by tenacity within a time budget.

One `httpx.Client` per process holds the connection pool; each check gets a
`BFFClient` view of it whose requests carry an ``X-Correlation-Id`` naming the
run and the check, so the check's requests can be found in the portal's logs.
Snapshots (``client.snapshot("/health/queues")``) are fetched once per process
and shared by every check that reads them, errors included.
"""

from __future__ import annotations

import functools
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from synthetic.config import Environment
from synthetic.errors import MeasurementError
from synthetic.version import __version__
from synthetic.waits import waiting_on

RETRY_STATUSES = frozenset({502, 503, 504})
CORRELATION_HEADER = "X-Correlation-Id"
USER_AGENT = f"synthetic/{__version__}"
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._:\-\[\]]+")


@dataclass(frozen=True)
class Snapshot:
    """One response, kept for every check of the run that reads it."""

    path: str
    status_code: int
    text: str
    content_type: str
    elapsed_ms: float

    def json(self) -> Any:
        """The body as JSON: a `MeasurementError` naming the path when it is not JSON."""
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            kind = self.content_type or "no content type"
            raise MeasurementError(
                f"GET {self.path} returned a body that is not JSON ({kind}; {exc.msg} "
                f"at line {exc.lineno} column {exc.colno})"
            ) from None

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
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol)


def _last_outcome(state: RetryCallState) -> httpx.Response:
    # Out of retries: hand back the last response (a 503 is still an answer)
    # or raise the last error.
    assert state.outcome is not None
    result: httpx.Response = state.outcome.result()
    return result


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class HttpSession:
    """The per-process pool and snapshot cache for one environment.

    The environment's ``headers`` (which may hold secrets) go only to its
    target's origin: ``base_url``'s, or ``metrics_url``'s when there is no
    ``base_url`` (then the metrics endpoint is the configured target). A
    ``metrics_url`` on another host or port gets the correlation id only.
    """

    def __init__(self, environment: Environment, *, run_id: str) -> None:
        target = environment.base_url or environment.metrics_url
        if not target:
            raise ValueError("HttpSession needs an environment with base_url or metrics_url")
        self.environment = environment
        self.run_id = run_id
        self.client = httpx.Client(
            base_url=environment.base_url or "",
            # The portal's logs show it: the log checks leave the monitor's own out.
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(environment.timeout_s),
            follow_redirects=True,
            verify=tls_context(),
        )
        self._target = _origin(httpx.URL(target))
        self._snapshots: dict[str, Snapshot | BaseException] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.client.close()

    def correlation_id(self, check: str) -> str:
        return _UNSAFE_ID.sub("_", f"synthetic-{self.run_id}-{check}")[:200]

    def request(
        self, method: str, path: str, *, check: str, retry_statuses: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One request, retried on connection errors and (unless ``retry_statuses``
        is false) on 502/503/504.

        Attempts are bounded by ``retries`` and by ``retry_budget_s``; the
        whole call takes at most about ``retry_budget_s + timeout_s``. A check
        that times its requests turns status retries off: a retried 503 would
        count the backoff as latency.
        """
        env = self.environment
        headers = {CORRELATION_HEADER: self.correlation_id(check)}
        url = httpx.URL(path)  # httpx merges a relative one into base_url: same origin
        if _origin(url if url.is_absolute_url else self.client.base_url) == self._target:
            headers.update(env.headers)
        headers.update(kwargs.pop("headers", {}))
        statuses = RETRY_STATUSES if retry_statuses else frozenset()
        retrying = Retrying(
            retry=retry_if_exception(_is_transient)
            | retry_if_result(lambda r: r.status_code in statuses),
            stop=stop_after_attempt(env.retries + 1) | stop_after_delay(env.retry_budget_s),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
            retry_error_callback=_last_outcome,
            reraise=True,
        )
        with waiting_on("http", f"{method} {path}"):  # a stop in here blames the target
            response: httpx.Response = retrying(
                self.client.request, method, path, headers=headers, **kwargs
            )
        return response

    def snapshot(self, path: str, *, check: str) -> Snapshot:
        """GET ``path`` once per process; later callers get the same answer or error."""
        with self._lock:
            cached = self._snapshots.get(path)
            if cached is None:
                started = time.perf_counter()
                try:
                    response = self.request("GET", path, check=check)
                    cached = Snapshot(
                        path=path,
                        status_code=response.status_code,
                        text=response.text,
                        content_type=response.headers.get("content-type", ""),
                        elapsed_ms=(time.perf_counter() - started) * 1000,
                    )
                except httpx.HTTPError as exc:
                    cached = exc
                self._snapshots[path] = cached
        if isinstance(cached, BaseException):
            raise cached
        return cached


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
        self, method: str, path: str, *, retry_statuses: bool = True, **kwargs: Any
    ) -> httpx.Response:
        return self._session.request(
            method, path, check=self.check, retry_statuses=retry_statuses, **kwargs
        )

    def get(self, path: str, *, retry_statuses: bool = True, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, retry_statuses=retry_statuses, **kwargs)

    def snapshot(self, path: str) -> Snapshot:
        return self._session.snapshot(path, check=self.check)

    def json(self, path: str) -> Any:
        """The JSON body of a 2xx answer to ``GET path``, shared within the process."""
        return self.snapshot(path).ok_json()
