"""The BFF client in this process against the hostile server: what its headers reach,
and how often a failing endpoint is waited on."""

from __future__ import annotations

import time

import httpx
import pytest

from synthetic.config import Environment
from synthetic.errors import ResponseRejected
from synthetic.measure.http import BFFClient, HttpSession
from tests.hostile.server import HostileServer

pytestmark = pytest.mark.slow

SECRET = {"X-Api-Key": "canary-3f9a2c71", "Authorization": "Bearer canary-77b1"}


def session(url: str, **settings: object) -> HttpSession:
    values: dict[str, object] = {"timeout_s": 1.0, "retries": 0, "retry_budget_s": 0.0}
    values.update(settings)
    environment = Environment(name="hostile", base_url=url, headers=SECRET, **values)  # type: ignore[arg-type]
    return HttpSession(environment, run_id="hostile")


def test_the_environments_headers_follow_a_redirect_only_within_its_origin(
    hostile: HostileServer,
) -> None:
    client = BFFClient(session(hostile.url("redirect-307") + "/~own"), check="c")
    assert client.json("/health")["status"] == "ok"
    hops = [r for r in hostile.reached(hostile.port) if "/~own/" in r.line or "/healthy/" in r.line]
    followed = [r for r in hops if r.line.startswith("GET /healthy/health ")]
    assert followed  # the same-origin hop was made, with the headers
    assert all(r.headers.get("x-api-key") == SECRET["X-Api-Key"] for r in followed)
    assert all(r.headers.get("authorization") == SECRET["Authorization"] for r in followed)

    for mode in ("redirect-other-port", "redirect-metadata", "redirect-other-host"):
        with pytest.raises(ResponseRejected, match="another origin, not followed"):
            BFFClient(session(hostile.url(mode)), check="c").snapshot("/health")
    assert hostile.reached(hostile.other_port) == []
    assert hostile.reached(hostile.metadata_port) == []
    assert not [r for r in hostile.recorded if r.headers.get("host", "").startswith("localhost")]


@pytest.mark.parametrize(
    ("mode", "error"),
    [("headers-then-hang", httpx.ReadTimeout), ("body-50mb", ResponseRejected)],
)
def test_a_failed_snapshot_is_waited_on_once(
    hostile: HostileServer, mode: str, error: type[Exception]
) -> None:
    url = hostile.url(mode) + f"/~once-{mode}"
    shared = session(url)
    started = time.monotonic()
    for check in ("check_a", "check_b", "check_c"):
        with pytest.raises(error):
            BFFClient(shared, check=check).snapshot("/health")
    assert time.monotonic() - started < 1.0 + 1.0  # one wait of timeout_s, not three
    assert [
        r.line.split(" ")[1] for r in hostile.reached(hostile.port) if "/~once-" + mode in r.line
    ] == [f"/{mode}/~once-{mode}/health"]
    shared.close()
