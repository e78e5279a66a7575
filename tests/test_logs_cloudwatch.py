"""The CloudWatch Logs Insights source: the calls' shape against moto's server,
and the answers from recorded ``GetQueryResults`` payloads of every status.

moto implements StartQuery and GetQueryResults, but its query parser knows
only ``fields``, ``sort`` and ``limit``: it ignores ``filter`` and ``stats``,
so it answers every query with the raw events. It shows the calls are made as
the API wants them (and the detection sample, a plain ``fields`` query, is
read for real), not that the numbers are right; the stand-in of
tests/support/logs_insights_standin.py replays what Logs Insights answers instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from synthetic.config import Environment, load_config
from synthetic.errors import MeasurementError, QueryFailed, Unreachable
from synthetic.logs.shapes import detect
from synthetic.logs.sources.client import Deadline
from synthetic.logs.sources.cloudwatch import Query, Runner, read
from synthetic.logs.sources.insights import SAMPLE
from synthetic.logs.sources.read import read_backend, readings
from tests.support.logs_helpers import PORTAL_DEPENDENCIES_TOML
from tests.support.logs_insights_standin import InsightsStandIn, Rows, insights_standin
from tests.support.moto_server import REGION, start_moto_or_fail

GROUP = "/ecs/customer-portal-bff"
AT_MS = 1_736_937_012_345  # 2025-01-15T10:30:12.345Z
MINUTE_S = AT_MS // 60_000 * 60


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3's chain finds these, and nothing of the machine's."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)


def environment(
    directory: Path, url: str, *, group: str = GROUP, timeout: float = 20
) -> Environment:
    config = directory / "synthetic.toml"
    config.write_text(
        f"[environments.t]\ntimeout_s = 2\nretries = 0\ncheck_timeout_s = {timeout}\n"
        '[environments.t.logs]\nsource = "cloudwatch"\npreset = "pino-http"\n'
        f'[environments.t.logs.cloudwatch]\nlog_group = "{group}"\nregion = "eu-west-1"\n'
        f'endpoint_url = "{url}"\npoll_s = 0.05\n' + PORTAL_DEPENDENCIES_TOML,
        encoding="utf-8",
    )
    return load_config(path=config, environment="t").environment


def recorded(query: str) -> Rows:
    """What Logs Insights answers each query of the reading (by what it asks)."""
    if "by synthetic_status" in query:
        return [{"synthetic_status": "200", "n": "95"}, {"synthetic_status": "500", "n": "4"},
                {"synthetic_status": "503", "n": "1"}]  # fmt: skip
    if "by synthetic_level" in query and "synthetic_text," not in query:
        return [{"synthetic_level": "30", "n": "300"}, {"synthetic_level": "50", "n": "7"},
                {"n": "3"}]  # fmt: skip
    if "sort @timestamp desc" in query:
        message = '{"level":50,"msg":"WHMCS API call failed","req":{"headers":{"cookie":"sid=1"}}}'
        return [{"@timestamp": "2025-01-15 10:29:58.000", "@message": message}]
    if "sort synthetic_duration desc" in query:
        message = '{"level":30,"responseTime":2450,"res":{"statusCode":200}}'
        return [{"@timestamp": "2025-01-15 10:29:50.000", "@message": message,
                 "synthetic_duration": "2450"}]  # fmt: skip
    if " in [" in query:
        return [{"n": "3", "p95": "140"}]
    if "pct(synthetic_duration" in query:
        return [{"n": "40", "p95": "812.5"}]
    if "synthetic_duration > 2000" in query:
        return [{"n": "2"}]
    if "and not (ispresent(`err`)" in query:
        return [{"synthetic_text": "WHMCS API call completed", "synthetic_level": "30",
                 "synthetic_call_status": "200", "n": "8"},
                {"synthetic_text": "Salesforce API call completed", "synthetic_level": "30",
                 "n": "5"}]  # fmt: skip
    if "and (ispresent(`err`)" in query:
        return [{"synthetic_text": "WHMCS API call failed", "synthetic_level": "50", "n": "2"}]
    raise AssertionError(f"a query the recording does not know: {query}")


@pytest.fixture
def insights() -> Iterator[InsightsStandIn]:
    with insights_standin(recorded, statuses=["Scheduled", "Running"]) as standin:
        yield standin


def test_complete_payloads_become_the_answers(tmp_path: Path, insights: InsightsStandIn) -> None:
    env = environment(tmp_path, insights.url)
    answers = readings(read_backend(env, now_ms=AT_MS), env)
    assert answers.error_rate().value == pytest.approx(5.0)
    assert answers.error_count().value == 7
    assert answers.response_time_p95().value == 812.5
    assert answers.slow_requests().value == 2
    assert answers.external_error_rate("whmcs").value == pytest.approx(20.0)
    assert answers.external_error_rate("salesforce").value == 0
    assert answers.response_time_p95("dep:whmcs").value == 140
    shown = json.dumps(answers.error_count().evidence)
    assert "sid=1" not in shown  # the cookie header, redacted
    assert answers.slow_requests().evidence["slowest"][0]["duration"] == 2450

    started = [body for operation, body in insights.calls if operation == "StartQuery"]
    assert len(started) == 10  # 8 at once, then one per dependency with calls (2)
    assert {body["logGroupName"] for body in started} == {GROUP}
    assert {body["endTime"] for body in started} == {AT_MS // 1000}
    windows = {body["startTime"] for body in started}
    assert windows == {MINUTE_S - 59 * 60, MINUTE_S - 4 * 60}  # the files' whole minutes
    polls = [op for op in insights.operations() if op == "GetQueryResults"]
    assert len(polls) == 3 * len(started)  # Scheduled, Running, Complete
    assert "StopQuery" not in insights.operations()


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout"])
def test_a_query_that_ends_badly_is_unknown_naming_it(tmp_path: Path, status: str) -> None:
    with insights_standin(recorded, final=status) as standin:
        env = environment(tmp_path, standin.url)
        with pytest.raises(
            MeasurementError, match=f"Logs Insights query '\\w+' on {GROUP} ended {status}"
        ) as raised:
            readings(read_backend(env, now_ms=AT_MS), env)
        assert not isinstance(raised.value, Unreachable)
        stopped = [body["queryId"] for op, body in standin.calls if op == "StopQuery"]
        assert len(stopped) == len(standin.queries)  # the others may still run: stopped


@pytest.mark.slow
def test_queries_running_past_the_budget_are_stopped(tmp_path: Path) -> None:
    with insights_standin(recorded, final="Running") as standin:
        env = environment(tmp_path, standin.url, timeout=2)  # a 1.5 s budget
        started = time.monotonic()
        document = read_backend(env, now_ms=AT_MS)
        assert time.monotonic() - started < 5
        assert "still running after 1.5s (the check's budget)" in document["error"]
        assert "'requests' Running" in document["error"]
        stopped = {body["queryId"] for op, body in standin.calls if op == "StopQuery"}
        assert stopped == set(standin.queries)


def test_a_missing_log_group_is_unknown_with_the_services_message(
    tmp_path: Path, insights: InsightsStandIn
) -> None:
    env = environment(tmp_path, insights.url, group="/ecs/nope")
    with pytest.raises(
        MeasurementError, match="ResourceNotFoundException: The specified log group does not exist"
    ):
        readings(read_backend(env, now_ms=AT_MS), env)


def test_cloudwatch_that_does_not_answer_is_unreachable(tmp_path: Path, refused_port: int) -> None:
    env = environment(tmp_path, f"http://127.0.0.1:{refused_port}")
    with pytest.raises(Unreachable, match="CloudWatch Logs did not answer start_query") as raised:
        readings(read_backend(env, now_ms=AT_MS), env)
    assert raised.value.target == "logs"


@pytest.mark.slow
def test_the_calls_against_moto(tmp_path: Path) -> None:
    """Shape only: moto answers every query with the raw events (it ignores filter and
    stats), so the reading ends UNKNOWN for want of a count; the detection sample, a
    query moto does evaluate, finds the lines' preset."""
    now_ms = int(time.time() * 1000)
    lines = [{"level": 30, "time": now_ms - 1000 * i, "res": {"statusCode": 200},
              "responseTime": 5 + i, "msg": "request completed", "req": {"id": f"r{i}"}}
             for i in range(5)]  # fmt: skip
    with start_moto_or_fail(directory=tmp_path) as moto:
        client: Any = boto3.session.Session().client(
            "logs", endpoint_url=moto.url, region_name=REGION
        )
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName="bff-1")
        events = [{"timestamp": ln["time"], "message": json.dumps(ln)} for ln in reversed(lines)]
        client.put_log_events(logGroupName=GROUP, logStreamName="bff-1", logEvents=events)
        calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register(
            "provide-client-params.logs.*",
            lambda params, model, **_: calls.append((model.name, dict(params))),
        )
        env = environment(tmp_path, moto.url)
        assert env.logs.cloudwatch is not None
        runner = Runner(client, env.logs.cloudwatch, Deadline(20))

        sample = runner.run(
            {"sample": Query(SAMPLE, now_ms // 1000 - 3600, now_ms // 1000 + 1, 200)}
        )
        records = [json.loads(row["@message"]) for row in sample["sample"]]
        assert detect(records) == ("pino-http", "res.statusCode and responseTime")

        with pytest.raises(QueryFailed, match="without a count 'n'"):
            read(env.logs, env.logs.cloudwatch, runner, at_ms=now_ms)
    started = [params for name, params in calls if name == "StartQuery"]
    assert len(started) >= 9
    for params in started:
        assert params["logGroupName"] == GROUP
        assert isinstance(params["startTime"], int)
        assert params["startTime"] < params["endTime"]
        assert params["queryString"].startswith("fields @timestamp, @message")
    polled = {params["queryId"] for name, params in calls if name == "GetQueryResults"}
    assert len(polled) == len(started)
