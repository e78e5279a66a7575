"""Runners in several locations against one real Redis: `synthetic run --location` processes,
each with a sandbox BFF of its own that the test switches down and up independently.

Exactly the expected pages, notices and resolves reach the loopback stand-ins of
PagerDuty (critical) and a webhook (info); Slack (warning) gets nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synthetic.sandbox.server import Sandbox
from tests.support.alert_receivers import PagerDutyStandIn, SlackStandIn, WebhookStandIn

pytestmark = pytest.mark.slow

SYNTHETIC = [sys.executable, "-m", "synthetic"]
ROUTING_KEY = "locRoutingKey0123456789abcdefABC"
RUN_TIMEOUT_S = 120.0

CHECKS = """\
import os
import time

import pytest


@pytest.mark.metric("portal.up", component="bff", priority="P1")
@pytest.mark.critical("!= 200")
def check_up(bff):
    if os.environ.get("HANG_AFTER_START"):
        open(os.environ["HANG_AFTER_START"], "w").close()
        time.sleep(600)
    return bff.get("/health").status_code
"""

CONFIG = """\
default_environment = "{env}"
state = "{redis}"
checks = ["checks"]

[environments.{env}]
base_url = "${{BFF_URL}}"
timeout_s = 2
retries = 0
retry_budget_s = 1

[alerts]
resolve_after = 2
digest_every = "1000d"
every = "{every}"
quorum = {{ "*" = {quorum} }}
location_probe = "${{PROBE_URL}}"

[alerts.receivers.pagerduty-oncall]
type = "pagerduty"
url = "{pagerduty}"
routing_key = "{routing_key}"

[alerts.receivers.slack-ops]
type = "slack"
url = "{slack}"

[alerts.receivers.info]
type = "webhook"
url = "{webhook}"

[[alerts.routes]]
receiver = "pagerduty-oncall"
severity = "critical"

[[alerts.routes]]
receiver = "slack-ops"
severity = "warning"

[[alerts.routes]]
receiver = "info"
severity = "info"
"""


@dataclass
class Place:
    """One location: its runner's target and its target-independent probe."""

    name: str
    sandbox: Sandbox
    probe: WebhookStandIn
    cut: bool = False  # its network: neither target nor probe reachable
    env: dict[str, str] = field(default_factory=dict)

    def environ(self, refused: str) -> dict[str, str]:
        return {
            "BFF_URL": refused if self.cut else self.sandbox.url,
            "PROBE_URL": refused if self.cut else self.probe.url,
            **self.env,
        }


@dataclass
class World:
    project: Path
    places: dict[str, Place]
    pagerduty: PagerDutyStandIn
    slack: SlackStandIn
    info: WebhookStandIn
    refused: str
    logs: list[str] = field(default_factory=list)
    running: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, name: str) -> subprocess.Popen[str]:
        place = self.places[name]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
        environ.update(place.environ(self.refused))
        process = subprocess.Popen(
            [*SYNTHETIC, "run", "--alerts", "send", "--location", name, "-p", "no:randomly"],
            cwd=self.project,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group: a kill takes its xdist worker too
        )
        self.running.append(process)
        return process

    def round(self, *names: str) -> None:
        """One run of each named location, all at once (they race on the store)."""
        started = [(name, self.start(name)) for name in names or self.places]
        for name, process in started:
            out, _ = process.communicate(timeout=RUN_TIMEOUT_S)
            self.logs.append(f"--- {name} (exit {process.returncode})\n{out}")
            assert process.returncode in (0, 1, 2, 3), out

    def status(self) -> dict[str, Any]:
        """What `synthetic alerts status --json` says."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
        done = subprocess.run(
            [*SYNTHETIC, "alerts", "status", "--json"],
            cwd=self.project,
            env={**environ, "BFF_URL": self.refused, "PROBE_URL": self.refused},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    def down(self, *names: str) -> None:
        for name in names:
            self.places[name].sandbox.set_scenario("down")

    def up(self, *names: str) -> None:
        for name in names or self.places:
            self.places[name].sandbox.set_scenario("healthy")

    def pages(self) -> list[tuple[str, str]]:
        return [
            (e["event_action"], e["payload"]["summary"] if "payload" in e else "")
            for e in self.pagerduty.events
        ]

    def notices(self) -> list[tuple[str, str, str]]:
        return [(d["action"], d["metric"], d["labels"]["location"]) for d in self.info.documents]


@pytest.fixture
def world(tmp_path: Path, redis_url: str, request: pytest.FixtureRequest) -> Iterator[World]:
    options: dict[str, Any] = {"every": "1h", "quorum": 2, **getattr(request, "param", {})}
    with (
        PagerDutyStandIn(routing_key=ROUTING_KEY) as pagerduty,
        SlackStandIn() as slack,
        WebhookStandIn() as info,
        Sandbox("healthy") as a,
        Sandbox("healthy") as b,
        Sandbox("healthy") as c,
        WebhookStandIn() as probe_a,
        WebhookStandIn() as probe_b,
        WebhookStandIn() as probe_c,
    ):
        (tmp_path / "checks").mkdir()
        (tmp_path / "checks" / "check_portal.py").write_text(CHECKS)
        (tmp_path / "synthetic.toml").write_text(
            CONFIG.format(
                env=f"loc{secrets.token_hex(4)}",  # its own keys in the shared Redis
                redis=redis_url,
                pagerduty=pagerduty.url,
                slack=slack.url,
                webhook=info.url,
                routing_key=ROUTING_KEY,
                **options,
            )
        )
        places = {
            name: Place(name, sandbox, probe)
            for name, sandbox, probe in (
                ("ci-eu", a, probe_a),
                ("ci-us", b, probe_b),
                ("office", c, probe_c),
            )
        }
        refused = f"http://127.0.0.1:{_refused_port()}"
        world = World(tmp_path, places, pagerduty, slack, info, refused)
        try:
            yield world
        finally:
            for process in world.running:
                _kill_group(process)


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the run and the worker it started (its own process group), by its id."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def _refused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


def test_one_then_two_then_all_locations_down_page_once_and_resolve_once(world: World) -> None:
    world.round()
    world.down("ci-eu")
    world.round()
    world.round()
    assert world.pages() == [], "one location alone must not page"
    world.down("ci-us")
    world.round()
    pages = world.pages()
    assert [action for action, _ in pages] == ["trigger"], "\n".join(world.logs)
    summary = pages[0][1]
    assert "failing from ci-eu and ci-us; ok from office" in summary, summary
    world.down("office")
    world.round()
    world.round()
    assert [action for action, _ in world.pages()] == ["trigger"], "all down: still one page"
    world.up()
    world.round()
    world.round()
    assert [action for action, _ in world.pages()] == ["trigger", "resolve"]
    keys = {event["dedup_key"] for event in world.pagerduty.events}
    assert len(keys) == 1
    assert next(iter(keys)).endswith('/target.unreachable{target="bff"}')
    event = world.pagerduty.events[0]
    assert event["payload"]["custom_details"]["locations"] == {
        "ci-eu": "critical",
        "ci-us": "critical",
        "office": "ok",
    }
    assert world.slack.messages == []
    # The info route: the recovery of the page, no location notice.
    assert [(d["kind"], d["metric"]) for d in world.info.documents] == [
        ("recovery", "target.unreachable")
    ]


@pytest.mark.parametrize("world", [{"quorum": 1}], indirect=True)
def test_a_location_cut_off_reports_itself_unhealthy_and_pages_nobody(world: World) -> None:
    world.round()
    world.places["office"].cut = True
    world.round()
    world.round()
    assert world.pages() == [], "\n".join(world.logs)
    assert world.notices() == [("trigger", "location.unhealthy", "office")]
    assert "office cannot reach anything" in world.info.documents[0]["summary"]
    status = world.status()
    assert {n: h["healthy"] for n, h in status["locations"].items()} == {
        "ci-eu": True,
        "ci-us": True,
        "office": False,
    }
    # Cut off, office's check is inhibited behind its root cause; the others answer.
    assert status["checks"] == {
        "portal.up": {"ci-eu": "ok", "ci-us": "ok"},
        'target.unreachable{target="bff"}': {"ci-eu": "ok", "ci-us": "ok", "office": "critical"},
    }
    world.places["office"].cut = False
    world.round()
    world.round()
    assert world.notices() == [
        ("trigger", "location.unhealthy", "office"),
        ("resolve", "location.unhealthy", "office"),
    ]
    assert world.pages() == []


@pytest.mark.parametrize("world", [{"every": "6s"}], indirect=True)
def test_a_location_killed_mid_run_goes_silent_and_is_reported_once(
    world: World, tmp_path: Path
) -> None:
    world.round()
    started = tmp_path / "office-started"
    world.places["office"].env["HANG_AFTER_START"] = str(started)
    office = world.start("office")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not started.exists() and time.monotonic() < deadline and office.poll() is None:
        time.sleep(0.05)
    assert started.exists(), office.communicate()[0] if office.poll() is not None else ""
    _kill_group(office)  # mid-run: it never reports again
    silent_since = time.monotonic()
    # The window is 2 x 6 s: the other two go on reporting past it.
    while time.monotonic() - silent_since < 16:
        world.round("ci-eu", "ci-us")
    world.round("ci-eu", "ci-us")
    assert world.notices() == [("trigger", "location.silent", "office")], "\n".join(world.logs)
    assert "office has not reported for" in world.info.documents[0]["summary"]
    assert world.pages() == []
