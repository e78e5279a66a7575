"""One JSON document in one Redis key, read and written with one-line errors:
what the state store (`synthetic.state`) and the alert store
(`synthetic.alerts.store`) both keep in Redis.

The client has bounded timeouts, and retries a dropped connection with jittered
backoff (a Redis restart); every Redis or socket error becomes a `StateError`
saying what was being done, never a traceback and never the URL's password.
A value that is not JSON, or that ``check`` refuses, is a `StateError` naming
the key. Transactions over the document (WATCH/MULTI/EXEC) are the alert
store's: they use `client` and `failing_as`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from synthetic.errors import StateError
from synthetic.text import printable

if TYPE_CHECKING:
    import redis

REDIS_TIMEOUT_S = 3.0
# With retries: waits of at least 0.1, 0.2, 0.4, 0.5, 0.5, 0.5 s (at most twice
# that), so a Redis restart of up to 2 s is ridden out and a refused connection
# fails within 5 s; a Redis that accepts and never answers costs each attempt
# its REDIS_TIMEOUT_S, which is why only the alert store retries.
REDIS_RETRIES = 6
REDIS_BACKOFF_BASE_S = 0.1
REDIS_BACKOFF_CAP_S = 1.0


class RedisDocument:
    """The JSON document at ``key``: ``empty()`` when there is none, ``check``
    (document, where) -> document when there is. ``retries``: how often a
    dropped connection or a timeout is tried again (0: one attempt of at most
    `REDIS_TIMEOUT_S`)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        description: str,
        what: str,
        empty: Callable[[], dict[str, Any]],
        check: Callable[[Any, str], dict[str, Any]],
        retries: int = 0,
    ) -> None:
        import redis  # loaded only when a Redis store is configured
        from redis.backoff import EqualJitterBackoff
        from redis.retry import Retry

        self.key = key
        self.description = description
        self.what = what
        self._empty = empty
        self._check = check
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(
                EqualJitterBackoff(base=REDIS_BACKOFF_BASE_S, cap=REDIS_BACKOFF_CAP_S),
                retries,
            ),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        self.errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def read(self) -> dict[str, Any]:
        with self.failing_as(f"read {self.what}"):
            raw = self.client.get(self.key)
        return self.parse(raw)

    def write(self, document: Mapping[str, Any]) -> None:
        with self.failing_as(f"write {self.what}"):
            self.client.set(self.key, json.dumps(document, sort_keys=True))

    def parse(self, raw: bytes | str | None) -> dict[str, Any]:
        """The document of a raw value read from the key (in a transaction too)."""
        if raw is None:
            return self._empty()
        try:
            document = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StateError(
                f"{self.description} key {self.key}: {self.what} is not valid JSON"
            ) from None
        return self._check(document, f"{self.description} key {self.key}")

    @contextlib.contextmanager
    def failing_as(self, doing: str) -> Iterator[None]:
        """Redis and socket errors inside as one `StateError`: ``cannot <doing>: ...``."""
        try:
            yield
        except self.errors as exc:
            said = printable(str(exc), 500) or type(exc).__name__
            raise StateError(f"{self.description}: cannot {doing}: {said}") from None

    def close(self) -> None:
        self.client.close()
