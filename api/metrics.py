"""Prometheus metrics of the service: labelled by service, action and reason codes only, never by patient."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HOOK_LATENCY = Histogram(
    "cds_hook_latency_seconds",
    "Time to answer a hook call, by service and outcome.",
    ["service", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
HOOK_FAILURES = Counter(
    "cds_hook_failures_total",
    "Hook calls answered with no cards because something failed, by service and cause.",
    ["service", "cause"],
)
