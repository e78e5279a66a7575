"""A small JSON-over-HTTP client for the log backends, bounded every way.

One deadline for the whole reading (every request and retry stays inside
it), the environment's per-request timeout and retry count, a cap on the
size of an answer. Connection errors, 429 (after its ``Retry-After`` when
that fits) and 502/503/504 are retried. What it raises says which kind of
trouble it was:

- `BackendDown` (an `Unreachable`): no answer, or 502/503/504 to the end: the
  log checks are CRITICAL ``unreachable``, one ``logs`` root cause;
- `QueryFailed` (a `MeasurementError`): the backend answered with an error
  (a bad query, a limit, 429 to the end): UNKNOWN with its message, one line.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from synthetic.errors import MeasurementError, QueryFailed, Unreachable
from synthetic.measure.http import USER_AGENT
from synthetic.text import printable

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_MESSAGE = 300
TARGET = "logs"  # the root-cause target of every log check
RETRY_STATUSES = frozenset({429, 502, 503, 504})
DOWN_STATUSES = frozenset({502, 503, 504})


class BackendDown(Unreachable):
    """The log backend did not answer (or its gateway said it is down)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, target=TARGET)


class Deadline:
    """A point in time every wait of one reading ends by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.left() <= 0


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    return printable(str(text), limit)


def error_message(body: bytes) -> str:
    """What an error answer says: its JSON ``error``/``message``, or its text."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        for key in ("error", "message", "Message"):
            if isinstance(document.get(key), str):
                return one_line(document[key])
    return one_line(body.decode("utf-8", "replace")) or "no message"


class JsonClient:
    """GETs that answer JSON, from one backend (``name`` is how messages call it)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        deadline: Deadline,
        timeout_s: float,
        retries: int,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_bytes = max_bytes
        self.requests = 0  # sent, retries included (the readers' threads share the client)
        self._count = threading.Lock()
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            auth=auth,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JsonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        """The JSON answer to ``GET path?params``; see the module for what it raises."""
        url = self.base_url + path
        attempt = 0
        while True:
            status, body, retry_after = self._once(url, params)
            if status is not None and 200 <= status < 300:
                try:
                    return orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise QueryFailed(
                        f"{self.name} answered with JSON it cannot read ({exc})"
                    ) from None
            retriable = status is None or status in RETRY_STATUSES
            wait = min(2.0, 0.2 * 2**attempt) * (0.8 + 0.4 * random.random())
            if retry_after is not None:
                wait = retry_after
            if retriable and attempt < self.retries and wait < self.deadline.left():
                attempt += 1
                time.sleep(wait)
                continue
            raise self._failure(url, status, body)

    def _once(self, url: str, params: Mapping[str, str]) -> tuple[int | None, bytes, float | None]:
        """(status, body, Retry-After seconds); status None for a transport error,
        whose description is the body."""
        left = self.deadline.left()
        if left <= 0:
            return None, b"no time left in the reading's deadline", None
        timeout = min(self.timeout_s, left)
        with self._count:
            self.requests += 1
        try:
            with self._client.stream("GET", url, params=params, timeout=timeout) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise QueryFailed(
                            f"{self.name} answered more than {self.max_bytes // 2**20} MB; "
                            "narrow the selector or the windows"
                        )
                    if self.deadline.expired():
                        return None, b"the answer did not finish within the deadline", None
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks), _retry_after(response)
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
                raise QueryFailed(f"{self.name}: {type(exc).__name__}: {exc}") from None
            return None, f"{type(exc).__name__}: {exc}".encode(), None

    def _failure(self, url: str, status: int | None, body: bytes) -> MeasurementError:
        if status is None:
            return BackendDown(
                f"{self.name} at {self.base_url} did not answer: {one_line(body.decode())}"
            )
        message = error_message(body)
        if status in DOWN_STATUSES:
            return BackendDown(f"{self.name} at {self.base_url} answered HTTP {status}: {message}")
        if status == 429:
            return QueryFailed(f"{self.name} rate-limited the query (HTTP 429): {message}")
        return QueryFailed(f"{self.name} refused the query (HTTP {status}): {message}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the usual backoff instead
