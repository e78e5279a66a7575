"""Masking secrets where text leaves the process (terminal, files, reports).

Secrets are the values that came from ``${VAR}`` placeholders, header values
(tokens, cookies), and passwords in URLs (``redis://:pw@host``). The masker is
applied at the edges; the values inside the process stay usable.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host
# Scheme and user are bounded, and a scheme starts only at a word boundary:
# unbounded, they rescan the rest of the text from every position (quadratic).
_URL_PASSWORD = re.compile(
    r"(?P<head>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,31}://[^/\s:@]{0,256}:)"
    r"(?P<pw>[^@\s/]{1,1024})(?=@)"
)
# key=value pairs in libpq DSNs and query strings: password=..., access_token=...
# The key may carry a prefix (db_password, client_secret); a quoted value is
# masked whole, spaces included.
_KEY_VALUE = re.compile(
    # The prefix is bounded ({1,32} per part, at most 4 parts): an unbounded
    # (?:[A-Za-z0-9]+[_-])* backtracks quadratically on text like "a_a_a_...".
    r"(?P<key>(?<![A-Za-z0-9_-])(?:[A-Za-z0-9]{1,32}[_-]){0,4}"
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|routing[_-]?key)"
    r"\s*[=:]\s*)(?P<value>'[^']*'?|\"[^\"]*\"?|[^\s&\"',;}]+)",
    re.IGNORECASE,
)
# Values shorter than this are not masked by substring: masking "1" or "ok"
# everywhere would destroy output while protecting nothing.
_MIN_SECRET_LENGTH = 4


_SENSITIVE_KEY = re.compile(
    r"(^|[_-])(authorization|cookie|password|passwd|secret|token|api[_-]?key|routing[_-]?key)$",
    re.IGNORECASE,
)


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key names a secret (``Authorization``, ``api_key``, ...)."""
    return isinstance(key, str) and _SENSITIVE_KEY.search(key) is not None


def value_present(value: object) -> bool:
    return value not in (None, "", [], {})


class Masker:
    """Replaces known secrets and URL passwords in text and JSON-like data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        new = {s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LENGTH}
        if new - self._secrets:
            self._secrets |= new
            # Longest first so a secret containing another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def text(self, text: str) -> str:
        if self._pattern is not None:
            # A secret can re-form around a mask ("ab" + "***" for "ab***"):
            # mask until nothing is left, a few passes at most.
            for _ in range(3):
                masked = self._pattern.sub(MASK, text)
                if masked == text:
                    break
                text = masked
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        return _KEY_VALUE.sub(lambda m: m.group("key") + MASK, text)

    def data(self, value: Any) -> Any:
        """A copy of ``value`` with every string (keys and values) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                self.data(k) if isinstance(k, str) else k: (
                    MASK if is_sensitive_key(k) and value_present(v) else self.data(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def mask_exception(exc: BaseException, masker: Masker, *, depth: int = 0) -> None:
    """Mask the string arguments of ``exc`` and its causes, in place.

    Reporters (pytest's, JUnit's, Allure's) format an exception from its
    args: masking them before any reporter reads them covers every one.
    """
    if depth > 5:
        return
    with contextlib.suppress(AttributeError, TypeError):  # read-only args on some types
        exc.args = tuple(masker.text(a) if isinstance(a, str) else a for a in exc.args)
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None and linked is not exc:
            mask_exception(linked, masker, depth=depth + 1)
