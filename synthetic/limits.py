"""The monitor's bounds on what a target may send, in one place.

Defaults of the environment's keys (``max_body_bytes``, ``max_series``) and
the fixed bounds behind them. A target over one of them answered, but with
more than the monitor reads: CRITICAL ``response too large (...)``.
"""

from __future__ import annotations

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
"""A response body, after decompression (``max_body_bytes``)."""

DEFAULT_MAX_SERIES = 100_000
"""Series of a Prometheus exposition (``max_series``), counted before it is parsed."""

MAX_REDIRECTS = 5
"""Same-origin redirects followed for one request."""

MAX_COMPRESSION_RATIO = 200
"""A compressed body may expand this many times (past its first `RATIO_FREE_BYTES`)."""

RATIO_FREE_BYTES = 1024 * 1024
"""Decompressed bytes allowed whatever the ratio: small bodies compress well too."""

MAX_JSON_VALUES = 500_000
"""Values (with object keys) of a JSON body: parsed, each one is a Python object."""

MAX_JSON_DEPTH = 1024
"""Nesting of a JSON body: orjson's own limit, which it enforces."""
