"""Canary secrets in every place the config can carry one, echoed back by a
hostile target, searched for in everything a run writes, prints and stores.

Each canary is distinct, so a find names the secret that leaked. A target
(`tests.hostile.echo_target`) sends back what it received, the credentials
among them, in bodies, error texts, redirects, response headers and its log.
The run has every output on: ``--alerts dry-run``, Allure, JUnit, ``-n 2``,
the text and Nagios formats, a job summary, the Prometheus textfile and a
Pushgateway, the file state store and a Redis one on a real ``redis-server``
(with the checks' Redis behind a password too). Then every file under the
project, stdout, stderr and every Redis key are read, and each canary is
looked for as written, URL-decoded (any encoder) and inside any base64 run
(any offset, either alphabet), found by decoding, not by the masker's rules.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

import pytest
import redis

from tests.support.servers import http_ready, server_process, start_redis_or_fail

REPO = Path(__file__).resolve().parents[2]
CHECKS = REPO / "checks"

# Name -> value. URL passwords hold characters a URL must encode ("/", "@",
# " "), so the form a client decodes and sends differs from the config's.
CANARIES = {
    "api_key": "cnry-apikey-Q7w1e2r3",  # ${VAR} in an X-Api-Key header
    "portal_key": "cnry-portalkey-T5y6u7",  # ${VAR} under a header name that is not "secret"
    "cookie": "cnry-cookie-I8o9p0a1",  # a literal Cookie header
    "client": "cnry-client-S2d3f4g5",  # a custom header from ${VAR}
    "tenant": "cnry-tenant H6j7k8",  # ${VAR} in base_url's path (a space: encoded)
    "base_pw": "cnry-basepw/L9z@x1",  # base_url's userinfo: the Basic header
    "redis_pw": "cnry-redispw-C2v3b4",  # redis_url (the checks' Redis requires it)
    "pg_pw": "cnry-pgpw/N5m6@q7",  # postgres_dsn
    "metrics_pw": "cnry-metricspw-W8e9r0",  # metrics_url's userinfo
    "metrics_q": "cnry-metricsq T1y2u3",  # ${VAR} in metrics_url's query
    "state_pw": "cnry-statepw-I4o5p6",  # the Redis state store's URL
    "push_pw": "cnry-pushpw-A7s8d9",  # pushgateway_url
    "pd_key": "cnry-pdkey-F0g1h2j3",  # a PagerDuty routing key
    "slack_path": "cnry-slack-K4l5z6x7",  # a Slack webhook's path
    "webhook_pw": "cnry-hookpw-C8v9b0",  # a webhook URL's password
    "webhook_token": "cnry-hooktok-N1m2q3",  # a webhook's header
    "smtp_pw": "cnry-smtppw-W4e5r6",  # an SMTP password
    "am_pw": "cnry-ampw-T7y8u9",  # Alertmanager's URL password
    "heartbeat": "cnry-heartbeat-I0o1p2",  # the heartbeat URL's path
}
STATE_USER = "statewriter"


def _url(value: str) -> str:
    return quote(value, safe="")


def config_text(port: int, other: int, redis_port: int, log: Path, state: str | None) -> str:
    c = CANARIES
    target = f"127.0.0.1:{port}"
    state_line = f'state = "{state}"' if state else ""
    return textwrap.dedent(
        f"""
        default_environment = "hostile"
        checks = ["{CHECKS}"]
        {state_line}

        [environments.hostile]
        base_url = "http://monitor:{_url(c["base_pw"])}@{target}/t/${{TENANT}}/"
        timeout_s = 2
        retries = 0
        retry_budget_s = 1
        check_timeout_s = 20
        redis_url = "redis://:{_url(c["redis_pw"])}@127.0.0.1:{redis_port}/0"
        postgres_dsn = "postgresql://monitor:{_url(c["pg_pw"])}@{target}/portal?connect_timeout=2"
        metrics_url = "http://metrics:{_url(c["metrics_pw"])}@127.0.0.1:{other}/metrics?tenant=${{METRICS_Q}}"
        log_files = ["{log}"]

        [environments.hostile.params]
        bullmq_queues = ["email"]
        p95_sample_size = 3
        connection_capacity = 100

        [environments.hostile.headers]
        "X-Api-Key" = "${{API_KEY}}"
        "X-Portal-Key" = "${{PORTAL_KEY}}"
        Cookie = "sid={c["cookie"]}"
        "X-Portal-Client" = "${{PORTAL_CLIENT}}"

        [environments.hostile.exporters]
        prometheus_textfile = "out/synthetic.prom"
        pushgateway_url = "http://push:{_url(c["push_pw"])}@{target}"
        timeout_s = 2

        [alerts]
        heartbeat_url = "http://{target}/ping/{c["heartbeat"]}"

        [alerts.receivers.pagerduty-oncall]
        type = "pagerduty"
        routing_key = "${{PD_KEY}}"

        [alerts.receivers.slack-ops]
        type = "slack"
        url = "http://{target}/services/{c["slack_path"]}"

        [alerts.receivers.hook]
        type = "webhook"
        url = "http://hook:{_url(c["webhook_pw"])}@{target}/hook"
        headers = {{ "X-Hook-Token" = "{c["webhook_token"]}" }}

        [alerts.receivers.email-team]
        type = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        smtp_username = "monitor"
        smtp_password = "${{SMTP_PASSWORD}}"
        from = "synthetic@example.com"
        to = ["team@example.com"]

        [alerts.receivers.am]
        type = "alertmanager"
        url = "http://am:{_url(c["am_pw"])}@{target}"

        [[alerts.routes]]
        receiver = "pagerduty-oncall"
        continue = true

        [[alerts.routes]]
        receiver = "slack-ops"
        continue = true

        [[alerts.routes]]
        receiver = "hook"
        continue = true

        [[alerts.routes]]
        receiver = "email-team"
        continue = true

        [[alerts.routes]]
        receiver = "am"
        """
    )


def environment() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    environ.update(
        API_KEY=CANARIES["api_key"],
        PORTAL_KEY=CANARIES["portal_key"],
        PORTAL_CLIENT=CANARIES["client"],
        TENANT=CANARIES["tenant"],
        METRICS_Q=CANARIES["metrics_q"],
        PD_KEY=CANARIES["pd_key"],
        SMTP_PASSWORD=CANARIES["smtp_pw"],
    )
    return environ


# -- finding a canary in any form, by decoding ------------------------------------------------

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}")


def _decoded_runs(text: str) -> Iterator[bytes]:
    """Every base64 run of ``text`` decoded at each of its four alignments."""
    for match in _BASE64_RUN.finditer(text):
        run = match.group(0).replace("-", "+").replace("_", "/")
        for shift in range(4):
            part = run[shift:]
            if len(part) % 4 == 1:  # a last character alone holds no whole byte
                part = part[:-1]
            part += "=" * (-len(part) % 4)
            try:
                yield base64.b64decode(part, validate=True)
            except (binascii.Error, ValueError):
                continue


def leaks(text: str) -> set[str]:
    """The canaries found in ``text``: as written, URL-decoded, or inside base64."""
    readings = {text, unquote(text), unquote_plus(text), text.replace("\\/", "/")}
    found = set()
    for name, value in CANARIES.items():
        if any(value in reading for reading in readings):
            found.add(name)
    decoded = [d for reading in (text, unquote(text)) for d in _decoded_runs(reading)]
    for name, value in CANARIES.items():
        if any(value.encode() in d for d in decoded):
            found.add(name)
    return found


def written_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_bytes().decode("utf-8", "replace")
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "synthetic.toml" and path.name != "bff.log"
    }


def redis_dump(client: redis.Redis) -> dict[str, str]:
    """Every key of every database, with its value whatever its type."""
    dump: dict[str, str] = {}
    for db in range(16):
        client.execute_command("SELECT", db)
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            value: Any
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(key)
            else:
                value = kind
            dump[f"db{db}:{key!r}"] = repr(value)
    client.execute_command("SELECT", 0)
    return dump


# -- the run ----------------------------------------------------------------------------------


@pytest.fixture
def secured_redis(tmp_path: Path) -> Iterator[tuple[int, redis.Redis]]:
    """A real redis-server whose default user needs the checks' canary password,
    with a second user for the state store (its own canary)."""
    with start_redis_or_fail(directory=tmp_path / "redis") as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        open_client = redis.Redis(host="127.0.0.1", port=port)
        open_client.acl_setuser(
            STATE_USER,
            enabled=True,
            passwords=[f"+{CANARIES['state_pw']}"],
            keys=["*"],
            commands=["+@all"],
        )
        open_client.config_set("requirepass", CANARIES["redis_pw"])
        open_client.close()
        admin = redis.Redis(host="127.0.0.1", port=port, password=CANARIES["redis_pw"])
        yield port, admin
        admin.close()


@pytest.fixture
def echo_target(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """The hostile target on two ports (the second is "another origin")."""
    log = tmp_path / "bff.log"
    log.touch()

    def command(own: int, other: int) -> list[str]:
        return [sys.executable, "-m", "tests.hostile.echo_target", str(own), str(other), str(log)]

    ready = http_ready("http://127.0.0.1:{port}/ready")
    with (
        server_process(
            "echo target (other origin)",
            lambda port: command(port, port),
            ready=ready,
            log=tmp_path / "other.log",
        ) as (other, _),
        server_process(
            "echo target", lambda port: command(port, other), ready=ready, log=tmp_path / "echo.log"
        ) as (port, _),
    ):
        yield port, other, log


def synthetic_run(project: Path, *args: str, summary: Path) -> subprocess.CompletedProcess[str]:
    environ = environment()
    environ["GITHUB_STEP_SUMMARY"] = str(summary)
    environ["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "synthetic", "run", "--config", "synthetic.toml", *args],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("store", ["file", "redis"])
def test_no_canary_leaves_the_process_in_any_form(
    store: str,
    tmp_path: Path,
    secured_redis: tuple[int, redis.Redis],
    echo_target: tuple[int, int, Path],
) -> None:
    redis_port, admin = secured_redis
    port, other, log = echo_target
    project = tmp_path / "project"
    project.mkdir()
    state = (
        f"redis://{STATE_USER}:{_url(CANARIES['state_pw'])}@127.0.0.1:{redis_port}/3"
        if store == "redis"
        else None
    )
    (project / "synthetic.toml").write_text(config_text(port, other, redis_port, log, state))
    summary = project / "step-summary.md"
    outputs: dict[str, str] = {}
    # Twice: the second run reads the state the first stored (rates, baselines,
    # open incidents) and so goes down other paths; one run prints Nagios.
    for n, output in enumerate(["text", "nagios"]):
        done = synthetic_run(
            project,
            "--results-dir", "out", "--alerts", "dry-run", "--format", output,
            "-n", "2", "--alluredir", "allure", f"--junitxml=junit-{n}.xml",
            summary=summary,
        )  # fmt: skip
        assert done.returncode in (1, 2, 3), done.stdout[-3000:] + done.stderr[-3000:]
        outputs[f"stdout of run {n}"] = done.stdout
        outputs[f"stderr of run {n}"] = done.stderr

    files = written_files(project)
    keys = redis_dump(admin)
    # The run did write what is searched: not a vacuous pass.
    assert {"out/results.json", "step-summary.md", "out/synthetic.prom"} <= set(files)
    assert any(name.startswith("out/alerts/") for name in files), sorted(files)
    assert any(name.startswith("allure/") for name in files)
    assert any(name.startswith("junit-") for name in files)
    if store == "redis":
        assert "db3:b'synthetic:state:hostile'" in keys, sorted(keys)
    else:
        assert "out/state-hostile.json" in files
    # The target did echo the credentials it was sent, in every form it got them.
    bff_log = log.read_text()
    assert {"api_key", "portal_key", "cookie", "client", "tenant", "base_pw"} <= leaks(bff_log)

    found = {
        where: sorted(names)
        for where, text in {**outputs, **files, **keys}.items()
        if (names := leaks(text))
    }
    assert found == {}
