"""Log-derived metrics: Pino JSON lines read incrementally into per-minute aggregates.

One concept per module:

- `settings`: the ``[environments.<name>.logs]`` table (field names, the
  dependency mapping, windows).
- `positions`: where each file was read up to; rotation, copy-truncate,
  partial lines; yields only the new complete lines.
- `parse`: a chunk of lines into columns (polars' NDJSON reader, with a
  line-by-line orjson fallback that counts what it cannot read).
- `aggregate`: per-minute counts and DDSketch bins, folded, pruned and queried
  by window; their JSON form for the state store.
- `evidence`: the matching lines kept for the result, redacted.
- `analysis`: one pass over the configured files, from the previous state to
  the new one and the metrics.
- `shared`: the analysis runs once per run, whichever process asks first.
- `readings`: what the log checks ask (`LogReadings`), answered by `metrics`
  from the files or by `sources` from Loki, CloudWatch Logs Insights or
  Prometheus.
"""
