"""The Prometheus log source against a real Prometheus scraping a real prom-client
app, and the same answers from files, Loki and Prometheus for one traffic mix.

The express BFF (tests/node/express_bff.js) logs with pino-http and exports
``http_requests_total``, ``http_request_duration_seconds`` and
``bff_dependency_duration_seconds``; Debian's Prometheus scrapes its admin
listener every second. The readings are taken at the time of a scrape made
after all the traffic (so ``increase`` has nothing to extrapolate: the series
start at 0 and end at that scrape), and compared with the truth: the statuses
the client received, and the files' lines (tests/support/node_truth.py).

Accuracy, honestly: counts and rates are exact from all three. A p95 is
exact from Loki (the true rank value), within 1 % from the files (DDSketch),
and from Prometheus only within the histogram's buckets
(``histogram_quantile`` interpolates inside the bucket holding the
observation of rank ``0.95 * n``, where the files' rank is
``floor(0.95 * (n - 1))``: with 100 requests the same observation, with 8
calls possibly the next one up, in the next bucket). The mix puts the
requests' 95th percentile well inside one bucket, so all three land in it.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from synthetic.config import Environment, load_config
from synthetic.errors import MeasurementError, NotAvailable, Unreachable
from synthetic.logs.analysis import analyse
from synthetic.logs.metrics import LogMetrics
from synthetic.logs.readings import LogReadings
from synthetic.logs.sources.read import read_backend, readings
from tests.support.logs_helpers import PORTAL_DEPENDENCIES_TOML
from tests.support.loki_standin import PORTAL_SELECTOR_TOML, loki_standin
from tests.support.node_apps import Calls, Driven, NodeApp, Orders, drive, node_app, require_node
from tests.support.node_truth import DEPENDENCIES, Truth, ground_truth
from tests.support.prometheus_server import Prometheus, start_prometheus_or_fail
from tests.support.servers import fail_on_server_error

pytestmark = pytest.mark.slow

BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000]  # express_bff.js's
# 100 requests whose 95th percentile is one of seven 350 ms answers: inside the
# (250, 500] ms bucket for every definition of the rank; 5xx answers of each
# kind; calls that fail by status and by a dropped connection.
MIX: list[Orders | Calls] = [
    Orders(74),
    Orders(4, status=500),
    Orders(1, status=503),
    Orders(1, throws=True),
    Orders(7, delay_ms=350),
    Orders(3, delay_ms=2100),
    Calls("whmcs", 6),
    Calls("whmcs", 2, fail="1"),
    Calls("freebit", 1, fail="reset"),
    Calls("freebit", 3, delay_ms=150),
]
PROMETHEUS = """
[environments.t.logs.prometheus]
url = "{url}"
requests_metric = '{requests}'
duration_histogram = 'http_request_duration_seconds{{job="bff"}}'
dependency_histogram = 'bff_dependency_duration_seconds{{job="bff"}}'
"""


@dataclass(frozen=True)
class Scraped:
    app: NodeApp
    prometheus: Prometheus
    driven: Driven
    scraped_ms: int  # a scrape after all the traffic: when Prometheus is read
    now_ms: int  # when the files and Loki are read


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    require_node()
    directory = tmp_path_factory.mktemp("prometheus")
    with fail_on_server_error(node_app("express", directory / "app")) as app:
        target = f"127.0.0.1:{app.admin_port}"
        with start_prometheus_or_fail(directory, targets=[target]) as prometheus:
            # The app's series are in the TSDB at 0 before the first request.
            prometheus.wait_for('sum(http_requests_total{job="bff"})', 0)
            driven = drive(app, MIX)
            scraped = prometheus.wait_for('sum(http_requests_total{job="bff"})', len(driven.sent))
            yield Scraped(app, prometheus, driven, int(scraped * 1000), int(time.time() * 1000))


def environment(directory: Path, source: str, table: str) -> Environment:
    config = directory / f"{source}.toml"
    config.write_text(
        "[environments.t]\ntimeout_s = 5\nretries = 1\n"
        f'[environments.t.logs]\nsource = "{source}"\npreset = "pino-http"\n{table}\n'
        + PORTAL_DEPENDENCIES_TOML,
        encoding="utf-8",
    )
    return load_config(path=config, environment="t").environment


def prometheus_env(
    directory: Path, url: str, requests: str = 'http_requests_total{job="bff"}'
) -> Environment:
    table = PROMETHEUS.format(url=url, requests=requests)
    return environment(directory, "prometheus", table)


def prometheus_readings(directory: Path, scraped: Scraped) -> LogReadings:
    env = prometheus_env(directory, scraped.prometheus.url)
    return readings(read_backend(env, now_ms=scraped.scraped_ms), env)


def bucket(value_ms: float) -> tuple[float, float]:
    """The histogram bucket (lower, upper] holding ``value_ms``."""
    at = bisect.bisect_left(BUCKETS_MS, value_ms)
    return (BUCKETS_MS[at - 1] if at else 0.0), BUCKETS_MS[at]


def assert_within_buckets(measured: float, durations: tuple[float, ...], what: str) -> None:
    """Prometheus's p95 is inside the buckets from the one holding the files' rank,
    ``floor(0.95 (n - 1))``, to the one holding its own, ``ceil(0.95 n)`` (1-based):
    with many observations one bucket, with few (8 calls) possibly the next one up."""
    n = len(durations)
    files_rank = durations[math.floor(0.95 * (n - 1))]
    own_rank = durations[max(0, math.ceil(0.95 * n) - 1)]
    lower, upper = bucket(files_rank)[0], bucket(own_rank)[1]
    assert lower <= measured <= upper, f"{what}: {measured} ms outside ({lower}, {upper}]"


def truth_of(scraped: Scraped) -> Truth:
    return ground_truth("express", scraped.app.log_files, scraped.now_ms)


def test_prometheus_answers_equal_what_the_client_saw(tmp_path: Path, scraped: Scraped) -> None:
    answers = prometheus_readings(tmp_path, scraped)
    sent = scraped.driven.sent
    failed = sum(1 for s in sent if s.status >= 500)
    assert failed >= 8
    assert answers.error_rate().value == pytest.approx(failed / len(sent) * 100, rel=1e-9)

    truth = truth_of(scraped)
    assert answers.slow_requests().value == truth.slow_requests == 3
    assert_within_buckets(answers.response_time_p95().value, truth.durations, "requests")
    for name in ("whmcs", "freebit"):
        dependency = truth.dependencies[name]
        assert answers.external_error_rate(name).value == pytest.approx(dependency.error_rate)
        measured = answers.response_time_p95(f"dep:{name}").value
        assert_within_buckets(measured, dependency.durations, name)
    with pytest.raises(NotAvailable, match="errors_metric"):
        answers.error_count()


def test_files_loki_and_prometheus_give_the_same_answers(tmp_path: Path, scraped: Scraped) -> None:
    files_env = environment(tmp_path, "file", "")
    files = LogMetrics(
        analyse([str(p) for p in scraped.app.log_files], files_env.logs, None,
                now_ms=scraped.now_ms), files_env.logs)  # fmt: skip
    with loki_standin([scraped.app.log_file]) as loki:  # Loki gets combined.log only
        loki_env = environment(
            tmp_path,
            "loki",
            f'[environments.t.logs.loki]\nurl = "{loki.url}"\n' + PORTAL_SELECTOR_TOML,
        )
        from_loki = readings(read_backend(loki_env, now_ms=scraped.now_ms), loki_env)
    from_prometheus = prometheus_readings(tmp_path, scraped)
    truth = truth_of(scraped)
    sources: dict[str, LogReadings] = {"files": files, "loki": from_loki,
                                       "prometheus": from_prometheus}  # fmt: skip

    for name, source in sources.items():
        assert source.error_rate().value == pytest.approx(truth.error_rate, rel=1e-9), name
        assert source.slow_requests().value == truth.slow_requests, name
        assert source.external_error_rate().value == pytest.approx(truth.external_error_rate), name
        for dependency in DEPENDENCIES:
            expected = truth.dependencies[dependency]
            if expected.error_rate is None:
                continue
            assert source.external_error_rate(dependency).value == pytest.approx(
                expected.error_rate
            ), (name, dependency)
    assert files.error_count().value == from_loki.error_count().value == truth.error_count

    assert truth.p95 is not None
    assert from_loki.response_time_p95().value == pytest.approx(truth.p95, abs=0.05)
    assert files.response_time_p95().value == pytest.approx(truth.p95, rel=0.01)
    # 100 requests: every rank of the 95th percentile is a 350 ms answer, one bucket.
    lower, upper = bucket(truth.p95)
    for name, source in sources.items():
        assert lower <= source.response_time_p95().value <= upper, name


def test_a_query_prometheus_refuses_is_unknown_with_its_message(
    tmp_path: Path, scraped: Scraped
) -> None:
    # Valid for the config (Python's re takes a lookahead), refused by Prometheus (RE2).
    refused = 'http_requests_total{route=~"(?=/api).*"}'
    env = prometheus_env(tmp_path, scraped.prometheus.url, refused)
    document = read_backend(env, now_ms=scraped.scraped_ms)
    assert not document.get("unreachable")
    assert "Prometheus refused the query (HTTP 400)" in document["error"]
    assert "invalid" in document["error"]
    assert "\n" not in document["error"]


def test_a_metric_prometheus_does_not_have_is_unknown_naming_it(
    tmp_path: Path, scraped: Scraped
) -> None:
    env = prometheus_env(tmp_path, scraped.prometheus.url, "no_such_total")
    answers = readings(read_backend(env, now_ms=scraped.scraped_ms), env)
    with pytest.raises(MeasurementError, match="Prometheus has no series no_such_total"):
        answers.error_rate()
    assert answers.slow_requests().value == 3  # the other parts still answer


def test_slow_requests_needs_a_bucket_boundary_at_slow_ms(tmp_path: Path, scraped: Scraped) -> None:
    config = (
        '[environments.t]\n[environments.t.logs]\nsource = "prometheus"\nslow_ms = 1500\n'
        + PROMETHEUS.format(url=scraped.prometheus.url, requests="http_requests_total")
    )
    (tmp_path / "s.toml").write_text(config, encoding="utf-8")
    env = load_config(path=tmp_path / "s.toml", environment="t").environment
    answers = readings(read_backend(env, now_ms=scraped.scraped_ms), env)
    with pytest.raises(NotAvailable, match=r"boundary at slow_ms \(1500 ms\).*1000, 2000, 5000"):
        answers.slow_requests()


def test_prometheus_down_is_unreachable(tmp_path: Path, refused_port: int) -> None:
    env = prometheus_env(tmp_path, f"http://127.0.0.1:{refused_port}")
    with pytest.raises(Unreachable, match=r"Prometheus at .* did not answer: ConnectError"):
        readings(read_backend(env), env)
