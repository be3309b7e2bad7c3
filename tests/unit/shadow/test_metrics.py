"""Replay metrics on hand-made stays: alert precision, event recall, lead time, utility and weighted ranking."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from scoring.utility import normalised_utility
from shadow.metrics import alert_metrics, row_metrics, row_stats, stay_stats


def _two_stays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Stay A (20 h) turns septic: first label at t=10, so onset t_sepsis = 16. Stay B (24 h) never does.
    labels = np.zeros(44, dtype=np.int8)
    labels[10:20] = 1
    alerts = np.zeros(44, dtype=bool)
    alerts[[5, 10, 12, 18]] = True  # 11 h early (false), 6 h and 4 h early (true), after onset (not counted)
    alerts[20 + 3] = True  # a false alert on the stay without sepsis
    return labels, alerts, np.array([0, 20])


def test_alert_precision_counts_alerts_up_to_onset_and_true_ones_within_eight_hours() -> None:
    labels, alerts, starts = _two_stays()
    m = alert_metrics(stay_stats(labels, alerts, starts), np.ones(2))
    assert m["alert_precision"] == 2 / 4
    assert m["event_recall"] == 1.0
    assert np.isclose(m["alerts_per_patient_day"], 5 * 24 / 44)
    assert m["share_of_stays_alerted"] == 1.0
    assert m["workup_to_detection"] == 2.0


def test_lead_time_is_onset_minus_the_earliest_alert_in_the_eight_hours_before_it() -> None:
    labels, alerts, starts = _two_stays()
    m = alert_metrics(stay_stats(labels, alerts, starts), np.ones(2))
    assert m["lead_time_median_h"] == 6.0
    assert m["time_to_first_alert_median_h"] == 3.0


def test_an_event_whose_only_alerts_come_too_early_or_too_late_is_missed() -> None:
    labels, alerts, starts = _two_stays()
    alerts[[10, 12]] = False
    m = alert_metrics(stay_stats(labels, alerts, starts), np.ones(2))
    assert m["event_recall"] == 0.0
    assert m["alert_precision"] == 0.0
    assert np.isnan(m["lead_time_median_h"])


def test_bootstrap_weights_count_a_stay_as_often_as_it_was_drawn() -> None:
    labels, alerts, starts = _two_stays()
    stats = stay_stats(labels, alerts, starts)
    twice_b = alert_metrics(stats, np.array([1.0, 2.0]))
    assert twice_b["alert_precision"] == 2 / 5
    assert np.isclose(twice_b["alerts_per_patient_day"], 6 * 24 / 68)


def test_row_utility_matches_the_challenge_utility_and_is_one_for_the_best_predictions() -> None:
    labels, _, starts = _two_stays()
    rng = np.random.default_rng(3)
    scores = rng.random(44)
    stats = row_stats(labels, scores, 0.6, starts)
    expected = normalised_utility(labels, scores >= 0.6, starts)
    assert np.isclose(row_metrics(stats, np.ones(2))["normalised_utility"], expected)
    best = np.zeros(44)
    best[4:20] = 1.0  # rows t_sepsis-12 .. end of the septic stay (t_sepsis+3 lies beyond it)
    assert np.isclose(row_metrics(row_stats(labels, best, 0.5, starts), np.ones(2))["normalised_utility"], 1.0)
    assert row_metrics(row_stats(labels, best, 2.0, starts), np.ones(2))["normalised_utility"] == 0.0


def test_weighted_auroc_and_auprc_equal_scikit_learn_on_the_rows_repeated_by_weight() -> None:
    labels, _, starts = _two_stays()
    scores = np.round(np.random.default_rng(4).random(44), 1)  # ties on purpose
    stats = row_stats(labels, scores, 0.5, starts)
    ones = row_metrics(stats, np.ones(2))
    assert np.isclose(ones["auroc"], roc_auc_score(labels, scores))
    assert np.isclose(ones["auprc"], average_precision_score(labels, scores))
    weighted = row_metrics(stats, np.array([2.0, 1.0]))
    repeated = np.concatenate([labels[:20], labels[:20], labels[20:]])
    repeated_scores = np.concatenate([scores[:20], scores[:20], scores[20:]])
    assert np.isclose(weighted["auroc"], roc_auc_score(repeated, repeated_scores))
    assert np.isclose(weighted["auprc"], average_precision_score(repeated, repeated_scores))
