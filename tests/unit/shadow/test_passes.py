"""The policy pass: the live engine on a simulated clock, with the policy's own silencing, and exact elision."""

from __future__ import annotations

import numpy as np

from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from shadow.candidates import always_suppressed
from shadow.inputs import ReplayInput
from shadow.metrics import alert_metrics, stay_stats
from shadow.passes import ALERTING, ScorerInfo, decide_stay

SCORER = ScorerInfo("sepsis-hgb", "test", (("high", 0.5), ("low", 0.0)))


def _data(scores: np.ndarray, labels: np.ndarray) -> ReplayInput:
    n = len(scores)
    return ReplayInput(
        stay_ids=("s1",),
        starts=np.array([0]),
        hours=np.arange(1, n + 1),
        scores=scores.astype(np.float32),
        labels=labels.astype(np.int8),
        units=("MICU",),
        ages=np.array([60.0]),
        partial=np.zeros(n, dtype=bool),
        last_measured={},
    )


def test_the_deterioration_policy_always_suppresses_a_low_sepsis_band_but_not_a_high_one() -> None:
    policy = RoutedPolicy(bundled_policy("deterioration"))
    assert always_suppressed(policy, "sepsis-hgb", "low")
    assert not always_suppressed(policy, "sepsis-hgb", "high")
    assert not always_suppressed(RoutedPolicy(bundled_policy("surface-all")), "sepsis-hgb", "low")


def test_a_sustained_high_risk_alerts_once_per_dedup_window_and_lead_time_counts_the_earliest_true_alert() -> None:
    policy = RoutedPolicy(bundled_policy("deterioration"))
    scores = np.where(np.arange(24) >= 4, 0.9, 0.1)
    labels = (np.arange(24) >= 10).astype(np.int8)  # onset t_sepsis = 16
    actions = decide_stay(policy, SCORER, _data(scores, labels), 0, frozenset())
    alerts = np.isin(actions, ALERTING)
    # The policy's 4 h de-duplication silences the hours in between.
    assert list(np.flatnonzero(alerts)) == [4, 8, 12, 16, 20]
    m = alert_metrics(stay_stats(labels, alerts, np.array([0])), np.ones(1))
    assert m["lead_time_median_h"] == 8.0  # the alert at t=8; the one at t=4 came 12 h early
    assert m["alert_precision"] == 3 / 4  # t=8, 12 and 16 are true; t=20 is after onset and not counted


def test_skipping_repeated_always_suppressed_rows_gives_exactly_the_engines_decisions() -> None:
    policy = RoutedPolicy(bundled_policy("deterioration"))
    rng = np.random.default_rng(7)
    for _ in range(5):
        scores = np.clip(rng.normal(0.4, 0.25, 60).cumsum() % 1.0, 0, 1)
        data = _data(scores, np.zeros(60))
        full = decide_stay(policy, SCORER, data, 0, frozenset())
        skipped = decide_stay(policy, SCORER, data, 0, frozenset({"low"}))
        np.testing.assert_array_equal(full, skipped)
        assert np.isin(full, ALERTING).any()
