"""Alerting: check results become routed, deduplicated alerts.

Decisions (sustain, dedupe, resolve, flap, silence, inhibit) are apart from
payload builders (one module per receiver, pure) and from delivery (retry,
outbox). This package holds, so far, the alert model and the payload builders.
"""
