"""The runbook link checker against loopback servers: 200, a 301 to another
host, 404, a slow answer, a redirect loop, one that never answers; bounded
concurrency; the report's verdicts and exit status."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from synthetic.limits import MAX_REDIRECTS
from synthetic.reports.links import fetch_links
from synthetic.reports.render import render
from synthetic.reports.runbooks import runbook_urls, runbooks_report
from tests.support.link_servers import Seen, serve
from tests.support.report_histories import spec

pytestmark = pytest.mark.slow  # servers on loopback, answers that take seconds

SLOW_S = 1.2


@pytest.fixture
def sites() -> Iterator[tuple[str, Seen, str, Seen]]:
    other, other_seen = serve({"/moved-here": (200, {}, 0.0)})
    other_url = f"http://127.0.0.1:{other.server_address[1]}"
    routes = {
        "/ok": (200, {}, 0.0),
        "/moved": (301, {"Location": f"{other_url}/moved-here"}, 0.0),
        "/renamed": (301, {"Location": "/ok"}, 0.0),
        "/slow": (200, {}, SLOW_S),
        "/loop": (302, {"Location": "/loop"}, 0.0),
        "/to-https": (301, {"Location": "https://127.0.0.1:9/secure"}, 0.0),
        "/hang": (200, {}, 30.0),
        **{f"/busy{n}": (200, {}, 0.4) for n in range(6)},
    }
    main, main_seen = serve(routes)
    try:
        yield f"http://127.0.0.1:{main.server_address[1]}", main_seen, other_url, other_seen
    finally:
        for server in (main, other):
            server.shutdown()
            server.server_close()


def test_each_kind_of_link_gets_its_verdict(sites: tuple[str, Seen, str, Seen]) -> None:
    base, seen, other_url, other_seen = sites
    names = ["ok", "moved", "renamed", "gone", "slow", "loop", "to-https", "hang"]
    started = time.monotonic()
    results = {
        r.url.rsplit("/", 1)[1]: r
        for r in fetch_links(
            [f"{base}/{n}" for n in names], concurrency=4, timeout_s=3.0, slow_s=SLOW_S / 2
        )
    }
    assert time.monotonic() - started < 3.0 + 2.0  # the hanging one costs its timeout, no more
    verdicts = {name: results[name].verdict for name in names}
    assert verdicts == {
        "ok": "ok",
        "moved": "moved",
        "renamed": "ok",
        "gone": "broken",
        "slow": "slow",
        "loop": "broken",
        "to-https": "moved",
        "hang": "broken",
    }
    assert results["moved"].final_url == f"{other_url}/moved-here"
    assert other_seen.paths == ["/moved-here"]  # followed: the same scheme
    assert results["renamed"].final_url == f"{base}/ok"
    assert results["renamed"].redirects == 1
    assert results["gone"].status == 404
    assert results["gone"].detail == "HTTP 404"
    assert results["loop"].detail == f"more than {MAX_REDIRECTS} redirects"
    assert seen.paths.count("/loop") == MAX_REDIRECTS + 1
    assert "another scheme, not followed" in results["to-https"].detail
    assert (
        "timed out" in results["hang"].detail.lower() or "timeout" in results["hang"].detail.lower()
    )
    assert results["slow"].elapsed_s >= SLOW_S


def test_links_are_fetched_a_bounded_number_at_a_time(sites: tuple[str, Seen, str, Seen]) -> None:
    base, seen, _, _ = sites
    results = fetch_links([f"{base}/busy{n}" for n in range(6)], concurrency=2, timeout_s=5.0)
    assert [r.verdict for r in results] == ["ok"] * 6
    assert seen.most_in_flight == 2


def test_the_report_lists_broken_moved_and_duplicate_links_and_exits_1(
    sites: tuple[str, Seen, str, Seen],
) -> None:
    base, _, _, _ = sites
    specs = [
        spec("checks/check_a.py::check_one", "a.one", "bff", runbook=f"{base}/ok"),
        spec("checks/check_b.py::check_two", "b.two", "queues", runbook=f"{base}/ok"),
        spec("checks/check_c.py::check_three", "c.three", "queues", runbook=f"{base}/gone"),
        spec("checks/check_d.py::check_four", "d.four", "cache", runbook=f"{base}/moved"),
        spec("checks/check_e.py::check_five", "e.five", "cache"),
    ]
    named = runbook_urls(specs)
    assert list(named) == [f"{base}/ok", f"{base}/gone", f"{base}/moved"]
    report = runbooks_report("production", named, fetch_links(list(named), timeout_s=3.0))
    assert report.exit_code == 1
    assert [(link["url"], link["verdict"]) for link in report.data["links"]] == [
        (f"{base}/gone", "broken"),
        (f"{base}/moved", "moved"),
        (f"{base}/ok", "ok"),
    ]
    text = render(report, "text")
    assert f"- {base}/ok: named by 2 checks of components bff, queues" in text
    healthy = runbooks_report("production", {f"{base}/ok": specs[:1]}, fetch_links([f"{base}/ok"]))
    assert healthy.exit_code == 0
