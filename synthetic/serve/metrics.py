"""``/metrics``: the last round as `synthetic.exporters.prometheus` exports a run, plus
the runner's own counters, in prometheus_client's exposition.

The check and run metrics keep the exporter's names and labels, so the rules
and dashboards of `synthetic generate` work against a scraped runner as
against a Pushgateway::

    synthetic_rounds_total               environment   rounds finished
    synthetic_round_overruns_total       environment   rounds that took longer than --every
    synthetic_rounds_stopped_total       environment   rounds whose process had to be killed
    synthetic_round_duration_seconds     environment   the last round's
    synthetic_round_overran              environment   1 when the last round overran
    synthetic_history_up                 environment   0 while the history cannot be written
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from synthetic.exporters.prometheus import registry
from synthetic.serve.view import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Runner(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s, env = self.snapshot, [self.snapshot.environment]
        for name, text, value in (
            ("synthetic_rounds", "Rounds the runner finished.", s.rounds),
            ("synthetic_round_overruns", "Rounds that took longer than their period.", s.overruns),
            ("synthetic_rounds_stopped", "Rounds whose process had to be killed.", s.killed),
        ):
            counter = CounterMetricFamily(name, text, labels=["environment"])
            counter.add_metric(env, value)
            yield counter
        gauges = [
            ("synthetic_round_overran", "1 when the last round overran its period.",
             float(s.round_overran)),
            ("synthetic_history_up", "0 while the history store cannot be written.",
             0.0 if s.history_warning else 1.0),
        ]  # fmt: skip
        if s.round_duration_s is not None:
            gauges.append(
                ("synthetic_round_duration_seconds", "How long the last round took.",
                 s.round_duration_s)
            )  # fmt: skip
        for name, text, number in gauges:
            gauge = GaugeMetricFamily(name, text, labels=["environment"])
            gauge.add_metric(env, number)
            yield gauge


def exposition(snapshot: Snapshot) -> bytes:
    reg = registry(snapshot.run) if snapshot.run is not None else CollectorRegistry()
    reg.register(_Runner(snapshot))
    return generate_latest(reg)
