"""Log-derived metrics from a backend instead of files: Loki, CloudWatch Logs
Insights, Prometheus.

- `settings`: the ``[logs.loki]``, ``[logs.cloudwatch]``, ``[logs.prometheus]`` tables.
- `client`: a small bounded JSON-over-HTTP client (deadline, retries, body cap).
- `loki`, `cloudwatch`, `prometheus`: each builds its queries (pure) and reads
  them into one plain JSON document, the same for every backend.
- `readings`: that document as the answers the log checks ask for
  (`LogReadings`, which the file analysis's `LogMetrics` answers too).
"""
