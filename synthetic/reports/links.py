"""Fetching runbook links: GET, bounded in time and number, redirects within the scheme.

Each link gets one GET with a total deadline (connect, headers, all of it:
`synthetic.measure.http_deadline`), its body never read; redirects are followed by
hand, at most `MAX_REDIRECTS`, and only to the same scheme (an ``http`` link
moved to ``https`` is reported, not followed). Links are fetched in
``concurrency`` threads at most.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from synthetic.limits import MAX_REDIRECTS
from synthetic.measure.http import REDIRECT_STATUSES, USER_AGENT, tls_context
from synthetic.measure.http_deadline import Deadline, bound_sockets, deadline_scope
from synthetic.text import printable

SHOWN = 200  # characters of a URL or error shown


@dataclass(frozen=True)
class LinkResult:
    url: str
    verdict: str  # ok | moved | slow | broken
    status: int | None  # the last answer's status
    final_url: str  # where the redirects led
    redirects: int
    elapsed_s: float
    detail: str  # one line: why

    @property
    def broken(self) -> bool:
        return self.verdict == "broken"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


def fetch(client: httpx.Client, url: str, *, timeout_s: float, slow_s: float) -> LinkResult:
    started = time.monotonic()

    def result(verdict: str, status: int | None, final: str, hops: int, detail: str) -> LinkResult:
        elapsed = time.monotonic() - started
        if verdict == "ok" and elapsed > slow_s:
            verdict, detail = "slow", f"answered in {elapsed:.1f} s (slow above {slow_s:g} s)"
        return LinkResult(url, verdict, status, printable(final, SHOWN), hops, elapsed, detail)

    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return result("broken", None, url, 0, f"not a URL: {printable(str(exc), SHOWN)}")
    if current.scheme not in ("http", "https"):
        return result("broken", None, url, 0, "not an http(s) URL")
    origin = _origin(current)
    moved = False
    with deadline_scope(Deadline.after(timeout_s, source="the link timeout")):
        for hops in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", current) as response:
                    status = response.status_code
                    location = response.headers.get("location")
            except httpx.HTTPError as exc:
                why = printable(f"{type(exc).__name__}: {exc}", SHOWN)
                return result("broken", None, str(current), hops, why)
            if status not in REDIRECT_STATUSES or location is None:
                if status >= 400:
                    return result("broken", status, str(current), hops, f"HTTP {status}")
                if moved:
                    return result(
                        "moved",
                        status,
                        str(current),
                        hops,
                        f"moved to another site (HTTP {status} there)",
                    )
                return result("ok", status, str(current), hops, f"HTTP {status}")
            try:
                target = current.join(location)
            except httpx.InvalidURL:
                return result(
                    "broken", status, str(current), hops, "redirected to an invalid Location"
                )
            if target.scheme != current.scheme:
                shown = printable(str(target), SHOWN)
                detail = f"redirected ({status}) to another scheme, not followed: {shown}"
                return result("moved", status, str(target), hops + 1, detail)
            moved = moved or _origin(target) != origin
            current = target
    return result(
        "broken", None, str(current), MAX_REDIRECTS, f"more than {MAX_REDIRECTS} redirects"
    )


def fetch_links(
    urls: Sequence[str], *, concurrency: int = 8, timeout_s: float = 10.0, slow_s: float = 3.0
) -> list[LinkResult]:
    """Every link fetched, ``concurrency`` at a time; results in the order of ``urls``."""
    client = bound_sockets(
        httpx.Client(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            verify=tls_context(),
        )
    )
    with client, ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(lambda u: fetch(client, u, timeout_s=timeout_s, slow_s=slow_s), urls))
