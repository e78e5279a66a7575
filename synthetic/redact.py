"""Masking secrets where text leaves the process (terminal, files, reports).

Secrets are the values that came from ``${VAR}`` placeholders, header values
(tokens, cookies), and passwords in URLs (``redis://:pw@host``). The masker is
applied at the edges; the values inside the process stay usable.

A secret travels in more than its literal form, so the masker knows each one
as (`url_forms`, `base64_cores`):

- written as is, URL-encoded the ways encoders do it (``quote`` with the safe
  sets of Python, JavaScript and RFC 3986 paths and queries, ``quote_plus``;
  upper or lower case hex) and with "/" escaped as JSON may: replaced by ``***``;
- base64, standard or URL-safe, padded or not, alone or inside a longer
  encoded text (a Basic header's ``user:password``, a JWT): a secret that
  starts at byte offset 0, 1 or 2 of a 3-byte group encodes to a different
  run of characters, and the characters wholly made of its bits are the same
  whatever surrounds it. Those three cores are looked for, and the whole
  base64 token holding one is replaced, so no bit of it is left.

Secrets shorter than `MIN_SECRET_LENGTH` are not masked by substring, in any
form: masking "1" or "ok" everywhere would destroy output while protecting
nothing (URL passwords and ``password=...`` pairs are still masked by shape).
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

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
_DSN_PASSWORD = re.compile(r"\bpassword\s*=\s*(?P<pw>'[^']*'|\S+)")
# Values shorter than this are not masked by substring: masking "1" or "ok"
# everywhere would destroy output while protecting nothing.
MIN_SECRET_LENGTH = 4

# The characters each common URL encoder leaves alone (besides letters,
# digits and "_.-~"): Python's quote() and quote(safe=""), JavaScript's
# encodeURIComponent and encodeURI, RFC 3986 path segments (httpx, Go's
# PathEscape) and queries. quote_plus() writes a space as "+".
_URL_SAFE_SETS = ("", "/", "!~*'()", ";,/?:@&=+$#!~*'()", "!$&'()*+,;=:@", "!$&'()*+,;=:@/?")
_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")
# The characters of a base64 token (either alphabet, percent-encoded "+/="
# included): a match of a core is widened to the whole token. "=" only
# after it, so "token=<base64>" keeps its key.
_B64_BEFORE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_%")
_B64_AFTER = _B64_BEFORE | {"="}


def url_forms(secret: str) -> set[str]:
    """``secret`` as it is and URL-encoded as the common encoders write it."""
    found = {secret}
    for safe in _URL_SAFE_SETS:
        found.add(quote(secret, safe=safe))
        found.add(quote_plus(secret, safe=safe))
    found |= {_PERCENT_HEX.sub(lambda m: m.group(0).lower(), form) for form in found}
    if "/" in secret:
        found.add(secret.replace("/", "\\/"))  # JSON may escape "/"
    return found


def base64_cores(secret: str) -> set[str]:
    """The base64 characters made only of ``secret``'s bits, for each of the
    three byte offsets it may start at; in both alphabets.

    A secret starting at offset ``k`` of a 3-byte group covers bits
    ``8k .. 8(k+n)`` of its stretch of the encoding: the characters whose
    six bits all fall inside are the same whatever comes before or after.
    """
    data = secret.encode("utf-8")
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode("ascii")
        core = encoded[(8 * offset + 5) // 6 : 8 * (offset + len(data)) // 6]
        cores.add(core)
        cores.add(core.translate(_URLSAFE))
        cores.add(core.replace("+", "%2B").replace("/", "%2F"))
    return {core for core in cores if core}


_URLSAFE = str.maketrans("+/", "-_")


class Masker:
    """Replaces known secrets (in every form) and URL passwords in text and JSON-like data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._encoded_only: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._encoded: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Mask each of ``secrets`` (those of at least `MIN_SECRET_LENGTH`
        characters) in every form."""
        new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        if new - self._secrets:
            self._secrets |= new
            self._compile()

    def add_credentials(self, username: str, password: str) -> None:
        """Mask the ``username:password`` pair in base64, as HTTP Basic sends it
        (httpx builds that header from a URL's userinfo). The pair itself is not
        a secret in text: ``https://monitor:***@host`` keeps its user name."""
        pair = f"{username}:{password}"
        if len(pair) >= MIN_SECRET_LENGTH and pair not in self._encoded_only:
            self._encoded_only.add(pair)
            self._compile()

    def add_url(self, value: str | None) -> None:
        """Mask the credentials inside a URL or a libpq key/value DSN: the
        password (as written and decoded), the Basic pair a client builds from
        the userinfo, and a user name with no password (a token, as in
        ``https://<token>@host``)."""
        if not value:
            return
        self.add(*(m.group("pw").strip("'") for m in _DSN_PASSWORD.finditer(value)))
        try:
            parts = urlsplit(value)
            username, password = parts.username, parts.password
        except ValueError:
            return
        if password:
            self.add(password, unquote(password))
            self.add_credentials(unquote(username or ""), unquote(password))
        elif username and "@" in parts.netloc:
            self.add(username, unquote(username))
            self.add_credentials(unquote(username), "")

    def _compile(self) -> None:
        literal = {form for secret in self._secrets for form in url_forms(secret)}
        # Longest first so a secret containing another is masked whole.
        self._pattern = _alternation(literal)
        cores = {
            core for secret in self._secrets | self._encoded_only for core in base64_cores(secret)
        }
        self._encoded = _alternation({core for core in cores if len(core) >= MIN_SECRET_LENGTH})

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
        if self._encoded is not None:
            text = _mask_tokens(self._encoded, text)
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


def _alternation(forms: set[str]) -> re.Pattern[str] | None:
    if not forms:
        return None
    ordered = sorted(forms, key=lambda form: (-len(form), form))
    return re.compile("|".join(re.escape(form) for form in ordered))


def _mask_tokens(cores: re.Pattern[str], text: str) -> str:
    """``text`` with every base64 token that holds one of ``cores`` replaced whole."""
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    for match in cores.finditer(text):
        if match.start() < done:
            continue  # inside a token already masked
        start, end = match.start(), match.end()
        while start > done and text[start - 1] in _B64_BEFORE:
            start -= 1
        while end < len(text) and text[end] in _B64_AFTER:
            end += 1
        pieces += (text[done:start], MASK)
        done = end
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


_SENSITIVE_KEY = re.compile(
    r"(^|[_-])(authorization|cookie|password|passwd|secret|token|api[_-]?key|routing[_-]?key)$",
    re.IGNORECASE,
)


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key names a secret (``Authorization``, ``api_key``, ...)."""
    return isinstance(key, str) and _SENSITIVE_KEY.search(key) is not None


def value_present(value: object) -> bool:
    return value not in (None, "", [], {})


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
