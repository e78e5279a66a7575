"""Delivery: the edge that talks to receivers.

`Deliverer.send` renders a request (`synthetic.alerts.payloads.render`, pure)
and sends it,
retrying what may pass (connection errors, timeouts, HTTP 429 and 5xx, SMTP
4xx) with exponential backoff and jitter, honouring ``Retry-After``, all
within the receiver's ``budget_s``: a hard deadline for the whole chain,
answers included (a `Cutoff` ends an attempt whose receiver drips its answer;
each attempt also ends at ``timeout_s``). A 2xx status line is the receiver's
acceptance: its body is not waited for; of any other answer at most 4 KB is
read. It never raises for a network or HTTP problem: it answers a
`DeliveryResult` whose one-line ``detail`` is masked (no routing key, webhook
path, header value or password)::

    with Deliverer(masker=masker) as deliverer:
        result = deliverer.send(receiver, alert, now=time.time())
        if result.status == "failed":
            ...  # keep it in the outbox, try again on a later run
"""

from __future__ import annotations

import contextlib
import datetime
import math
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential_jitter

from synthetic.alerts.cutoff import Cutoff
from synthetic.alerts.model import Alert
from synthetic.alerts.payloads import email as email_payload
from synthetic.alerts.payloads import one_line, render
from synthetic.alerts.payloads import truncate as _truncate
from synthetic.alerts.settings import Receiver
from synthetic.redact import MASK, Masker

Status = Literal["delivered", "rejected", "failed"]

MAX_DETAIL: Final = 300
# A safety net under the time budget: a receiver answering 503 at once
# should not be hit dozens of times in one run.
MAX_ATTEMPTS: Final = 8
PING_ATTEMPTS: Final = 3
# Shortest timeout an attempt gets when the budget is nearly spent.
MIN_TIMEOUT_S: Final = 0.05
_MAX_TEXT: Final = 4096  # of a response, read before masking and cutting
_BACKOFF = wait_exponential_jitter(multiplier=0.25, max=8.0, jitter=0.25)
_SECRET_MIN = 4  # as the masker: shorter values would mask half the text


@dataclass(frozen=True)
class DeliveryResult:
    """How one delivery went.

    ``delivered``: the receiver accepted it. ``rejected``: it refused it for
    good (HTTP 4xx other than 429, SMTP 5xx, a broken config): retrying the
    same request cannot help. ``failed``: it could not be delivered now
    (unreachable, timed out, throttled, 5xx): try again on a later run.
    ``detail`` is one masked line of at most 300 characters.
    """

    status: Status
    detail: str
    attempts: int


@dataclass(frozen=True)
class _Try:
    """One attempt: ``retry`` may pass on a later attempt."""

    outcome: Literal["delivered", "rejected", "retry"]
    detail: str  # "HTTP 503: upstream down", "connection refused"
    head: str = ""  # "HTTP 429", for "HTTP 429: retry after 120 s would pass ..."
    retry_after: float | None = None


class Deliverer:
    """Sends alerts to receivers over one shared HTTP client (and SMTP).

    ``sleep`` and ``clock`` (monotonic seconds) are what the retries wait
    with and measure the budget by; tests pass their own.
    """

    def __init__(
        self,
        *,
        masker: Masker,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.masker = masker
        self._sleep = sleep
        self._clock = clock
        # No keep-alive: each attempt opens its own connection, so the cutoff
        # sees every socket an attempt uses (a pooled one has no connect event).
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def send(
        self,
        receiver: Receiver,
        alert: Alert,
        *,
        now: float,
        request: Mapping[str, Any] | None = None,
    ) -> DeliveryResult:
        """Deliver ``alert`` to ``receiver``, retrying within ``receiver.budget_s``.

        ``request`` is what to send instead of what `render` gives (a plugin's
        change to it), in the same shape.
        """
        if not receiver.ready:
            # The reasons name keys and variables, never values (those are unset);
            # the masker would take "routing_key: environment ..." for a secret.
            reasons = _truncate(one_line("; ".join(receiver.missing)), MAX_DETAIL - 11)
            return DeliveryResult("failed", f"not ready: {reasons}", 0)
        secrets = _secrets(receiver)
        try:
            if receiver.type == "email":
                mail, sender, recipients = _envelope(receiver, alert, request)
            elif request is None:
                request = render(receiver, alert, now=now).request
        except (KeyError, TypeError, ValueError) as exc:
            return self._result("rejected", f"cannot build the message: {exc}", 0, secrets)
        if receiver.type == "email":
            return self._retry(
                lambda timeout, _: _smtp_attempt(receiver, mail, sender, recipients, timeout),
                budget_s=receiver.budget_s,
                timeout_s=receiver.timeout_s,
                now=now,
                secrets=secrets,
            )
        http = dict(request or {})
        return self._retry(
            lambda timeout, at: self._http_attempt(
                str(http.get("method", "POST")),
                str(http.get("url", "")),
                json=http.get("json"),
                headers=http.get("headers"),
                timeout=timeout,
                now=at,
            ),
            budget_s=receiver.budget_s,
            timeout_s=receiver.timeout_s,
            now=now,
            secrets=secrets,
        )

    def ping(self, url: str, *, timeout_s: float = 10.0) -> DeliveryResult:
        """A dead-man's-switch heartbeat: ``GET url``; 2xx is delivered.

        At most three attempts within three timeouts; the URL (which often
        holds the check's token) never appears in the detail.
        """
        secrets = _url_secrets(url, path=True)
        now = time.time()
        return self._retry(
            lambda timeout, at: self._http_attempt("GET", url, timeout=timeout, now=at),
            budget_s=3 * timeout_s,
            timeout_s=timeout_s,
            now=now,
            secrets=secrets,
            max_attempts=PING_ATTEMPTS,
        )

    def _http_attempt(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        now: float,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Try:
        """One request, over within ``timeout`` from its first byte to its answer."""
        with Cutoff(timeout) as cutoff:

            def trace(event: str, info: Mapping[str, Any]) -> None:
                if event in _CONNECTED and info.get("return_value") is not None:
                    sock = info["return_value"].get_extra_info("socket")
                    if isinstance(sock, socket.socket):
                        cutoff.watch(sock)

            try:
                request = self._client.build_request(
                    method,
                    url,
                    json=json,
                    # The error text is read as sent: a compressed body could
                    # expand far beyond the 4 KB read of it.
                    headers={"Accept-Encoding": "identity", **(headers or {})},
                    timeout=httpx.Timeout(timeout),
                    extensions={"trace": trace},
                )
                response = self._client.send(request, stream=True)
                try:
                    return _answer(response, now=now)
                finally:
                    response.close()
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                if cutoff.fired:
                    return _Try("retry", _no_answer(timeout))
                return _Try("rejected", f"cannot send the request: {exc}")
            except httpx.TransportError as exc:
                if cutoff.fired:
                    return _Try("retry", _no_answer(timeout))
                return _Try("retry", _transport_problem(exc, timeout))
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                return _Try("rejected", f"cannot send the request: {exc}")

    def _retry(
        self,
        attempt: Callable[[float, float], _Try],
        *,
        budget_s: float,
        timeout_s: float,
        now: float,
        secrets: list[str],
        max_attempts: int = MAX_ATTEMPTS,
    ) -> DeliveryResult:
        """Run ``attempt(timeout, now)`` until it is not ``retry``, or the budget
        (total wall time, waits and answers included) or ``max_attempts`` is
        spent. An attempt must be over within its ``timeout``: each gets at
        most what is left of the budget, and none starts without at least
        `MIN_TIMEOUT_S` of it left."""
        started = self._clock()
        attempts = 0

        def elapsed() -> float:
            return self._clock() - started

        def call() -> _Try:
            nonlocal attempts
            attempts += 1
            # The last attempt gets what is left of the budget, not a whole timeout.
            timeout = max(MIN_TIMEOUT_S, min(timeout_s, budget_s - elapsed()))
            return attempt(timeout, now + elapsed())

        def wait(state: RetryCallState) -> float:
            last = _last(state)
            return last.retry_after if last.retry_after is not None else _BACKOFF(state)

        def stop(state: RetryCallState) -> bool:
            return (
                state.attempt_number >= max_attempts
                or elapsed() + state.upcoming_sleep + MIN_TIMEOUT_S > budget_s
            )

        retrying = Retrying(
            retry=retry_if_result(lambda t: t.outcome == "retry"),
            wait=wait,
            stop=stop,
            sleep=self._sleep,
            retry_error_callback=_last,
        )
        last: _Try = retrying(call)
        took = f"{elapsed():.1f} s"
        if last.outcome == "delivered":
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            return self._result("delivered", f"{last.detail} in {took}{tries}", attempts, secrets)
        if last.outcome == "rejected":
            return self._result("rejected", last.detail, attempts, secrets)
        detail = last.detail
        plural = "s" if attempts != 1 else ""
        spent = f"{attempts} attempt{plural} in {took}"
        if last.retry_after is not None and elapsed() + last.retry_after > budget_s:
            detail = (
                f"{last.head or detail}: retry after {_seconds(last.retry_after)} s "
                f"would pass the {_seconds(budget_s)} s budget"
            )
        elif attempts < max_attempts:
            spent += f", the {_seconds(budget_s)} s budget ran out"
        return self._result("failed", f"{detail}; {spent}", attempts, secrets)

    def _result(
        self, status: Status, detail: str, attempts: int, secrets: list[str]
    ) -> DeliveryResult:
        text = one_line(detail)
        for secret in secrets:
            text = text.replace(secret, MASK)
        text = _truncate(self.masker.text(text), MAX_DETAIL)
        return DeliveryResult(status=status, detail=text, attempts=attempts)


def _last(state: RetryCallState) -> _Try:
    assert state.outcome is not None
    result: _Try = state.outcome.result()
    return result


# The httpcore trace events that hand over a new connection's stream.
_CONNECTED = frozenset(
    {"connection.connect_tcp.complete", "connection.connect_unix_socket.complete"}
)


def _answer(response: httpx.Response, *, now: float) -> _Try:
    """What a (streamed) response says; reads at most `_MAX_TEXT` bytes of it."""
    code = response.status_code
    head = f"HTTP {code}"
    if 200 <= code < 300:
        return _Try("delivered", head)
    text = one_line(_start_of_body(response)) or response.reason_phrase
    if 300 <= code < 400:
        return _Try("rejected", f"{head}: a redirect, not followed (is the URL right?)")
    detail = f"{head}: {text}" if text else head
    if code == 429 or code >= 500:
        delay = retry_after(response.headers.get("Retry-After"), now=now)
        return _Try("retry", detail, head=head, retry_after=delay)
    return _Try("rejected", detail, head=head)


def _start_of_body(response: httpx.Response) -> str:
    """The first `_MAX_TEXT` bytes of the body as text ("" when it is encoded)."""
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return ""
    data = b""
    for chunk in response.iter_raw():
        data += chunk
        if len(data) >= _MAX_TEXT:
            break
    try:
        return data[:_MAX_TEXT].decode(response.charset_encoding or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return data[:_MAX_TEXT].decode("utf-8", "replace")


def retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date).

    ``now`` (epoch seconds) is what a date is measured from; a date in the
    past is 0; a value that is neither is None.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _no_answer(timeout: float) -> str:
    return f"no complete answer within {_seconds(timeout)} s"


def _transport_problem(exc: httpx.TransportError, timeout: float) -> str:
    message = one_line(str(exc))
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {_seconds(timeout)} s"
    if isinstance(exc, httpx.TimeoutException):
        return _no_answer(timeout)
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending" in message:
            return "connection dropped without an answer"
        return f"connection dropped: {message}"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in message.lower():
            return "connection refused"
        return f"cannot connect: {message}"
    return f"network error: {message or type(exc).__name__}"


def _envelope(
    receiver: Receiver, alert: Alert, request: Mapping[str, Any] | None
) -> tuple[EmailMessage, str, list[str]]:
    """The mail, the envelope sender and the recipients' addresses (not their names)."""
    if request is None:
        mail = email_payload.message(
            alert, sender=receiver.email_from or "", recipients=list(receiver.email_to)
        )
        sender, to = receiver.email_from or "", list(receiver.email_to)
    else:
        mail = message_from_string(str(request["message"]), policy=policy.default)
        sender, to = str(request["from"]), [str(t) for t in request["to"]]
    recipients = [address for _, address in getaddresses(to) if address]
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    return mail, parseaddr(sender)[1], recipients


class _WatchedSMTP(smtplib.SMTP):
    """`smtplib.SMTP` whose connection a `Cutoff` can end (``cutoff`` set before connecting)."""

    cutoff: Cutoff

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.cutoff.watch(sock)
        return sock


class _WatchedSMTPS(smtplib.SMTP_SSL, _WatchedSMTP):
    """Over TLS from the start; the plain socket is watched before its handshake."""


def _smtp_attempt(
    receiver: Receiver, mail: EmailMessage, sender: str, recipients: list[str], timeout: float
) -> _Try:
    """One SMTP conversation, over within ``timeout``; delivered once DATA is accepted."""
    with Cutoff(timeout) as cutoff:
        attempt = _smtp_conversation(receiver, mail, sender, recipients, timeout, cutoff)
    if cutoff.fired and attempt.outcome == "retry":
        return _Try("retry", f"SMTP: no complete answer within {_seconds(timeout)} s")
    return attempt


def _smtp_conversation(
    receiver: Receiver,
    mail: EmailMessage,
    sender: str,
    recipients: list[str],
    timeout: float,
    cutoff: Cutoff,
) -> _Try:
    host = receiver.smtp_host or ""
    smtp: _WatchedSMTP
    if receiver.smtp_tls == "ssl":
        smtp = _WatchedSMTPS(timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = _WatchedSMTP(timeout=timeout)
    smtp.cutoff = cutoff
    try:
        try:
            smtp.connect(host, receiver.smtp_port)
            if receiver.smtp_tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if receiver.smtp_username:
                smtp.login(receiver.smtp_username, receiver.smtp_password or "")
            refused = smtp.send_message(mail, from_addr=sender, to_addrs=recipients)
        finally:
            # Accepted is accepted: a QUIT that fails or drips changes nothing.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()
    except smtplib.SMTPRecipientsRefused as exc:
        answers = list(exc.recipients.values())
        code, text = answers[0] if answers else (-1, b"")
        transient = any(400 <= c < 500 for c, _ in answers)
        return _Try("retry" if transient else "rejected", _smtp_text(code, text, "recipients"))
    except smtplib.SMTPResponseException as exc:
        transient = not 500 <= exc.smtp_code < 600
        return _Try("retry" if transient else "rejected", _smtp_text(exc.smtp_code, exc.smtp_error))
    except smtplib.SMTPServerDisconnected as exc:
        return _Try("retry", f"SMTP connection closed: {exc}")
    except smtplib.SMTPException as exc:  # no STARTTLS, no suitable AUTH method
        return _Try("rejected", f"SMTP: {exc}")
    except ssl.SSLCertVerificationError as exc:
        return _Try("rejected", f"SMTP TLS: {exc.verify_message or exc}")
    except TimeoutError:
        return _Try("retry", f"SMTP: no answer within {_seconds(timeout)} s")
    except ConnectionRefusedError:
        return _Try("retry", "SMTP connection refused")
    except OSError as exc:
        return _Try("retry", f"SMTP: {exc.strerror or exc}")
    except ValueError as exc:  # e.g. a password or address that cannot be encoded
        return _Try("rejected", f"SMTP: cannot send: {exc}")
    if refused:
        return _Try("delivered", f"SMTP accepted ({len(refused)} recipients refused)")
    return _Try("delivered", "SMTP accepted")


def _smtp_text(code: int, text: bytes | str, what: str = "") -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    prefix = f"SMTP {code}" + (f" ({what} refused)" if what else "")
    text = one_line(text[:_MAX_TEXT])
    return f"{prefix}: {text}" if text else prefix


def _secrets(receiver: Receiver) -> list[str]:
    """What must never appear in a detail, besides what the masker knows."""
    values = [receiver.routing_key, receiver.smtp_password, *receiver.headers.values()]
    found = [v for v in values if v]
    if receiver.url:
        # A Slack or webhook URL's path is its credential; a query may hold a token.
        found += _url_secrets(receiver.url, path=receiver.type in ("slack", "webhook"))
    return sorted({s for s in found if len(s) >= _SECRET_MIN}, key=len, reverse=True)


def _url_secrets(url: str, *, path: bool) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    found = [parts.query, password or ""]
    if path and parts.path.strip("/"):
        found += [url, parts.path]
    return sorted({s for s in found if len(s) >= _SECRET_MIN}, key=len, reverse=True)


def _seconds(value: float) -> str:
    """``120``, ``30``, ``0.5``: seconds as a reader wants them."""
    return f"{value:.1f}".removesuffix(".0")
