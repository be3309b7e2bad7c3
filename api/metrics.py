"""Prometheus metrics of the service: labelled by service, action and reason codes only, never by patient."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
DECISIONS = Counter(
    "cds_decisions_total",
    "Decisions made on live hook calls, by service, action and first reason code.",
    ["service", "action", "reason"],
)
SCORER_ERRORS = Counter("cds_scorer_errors_total", "Scorers that raised on a hook call, by scorer.", ["scorer"])
FEEDBACK = Counter(
    "cds_feedback_total",
    "Clinician responses received: CDS Hooks feedback by outcome, and card actions by action.",
    ["source", "outcome"],
)
# Read from the database when /metrics is scraped (store/queue_figures.py), so every worker reports the same queue.
OUTBOX_DEPTH = Gauge("cds_outbox_messages", "Outbox messages by state (pending, delivering, dead).", ["state"])
TIMERS_PENDING = Gauge("cds_timers_pending", "Durable timers not yet fired.")
TIMER_LAG = Gauge("cds_timer_lag_seconds", "How long the most overdue pending timer has been due (0 when none is).")
