"""PhysioNet 2019 utility on stays whose per-row utilities are worked out by hand from the clinical reference."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.utility import (
    best_threshold,
    hourly_auprc,
    hourly_auroc,
    normalised_utility,
    row_utilities,
    utility_report,
)

# A septic stay of 25 rows whose first SepsisLabel=1 row is row 12: t_sepsis = 18, so d = t - 18 runs -18 .. 6.
SEPTIC = np.array([0] * 12 + [1] * 13)
D = np.arange(25) - 18
# Positive at each row: -0.05 floor before d=-12, rising 0 .. 1 up to d=-6, falling 8/9 .. 0 up to d=+3, then 0.
SEPTIC_IF_POSITIVE = (
    [-0.05] * 6 + [0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1] + [k / 9 for k in range(8, -1, -1)] + [0] * 3
)
# Negative at each row: 0 up to d=-6, then -2/9 .. -2 up to d=+3, then 0.
SEPTIC_IF_NEGATIVE = [0.0] * 13 + [-2 * k / 9 for k in range(1, 10)] + [0] * 3
NON_SEPTIC = np.zeros(5, dtype=int)


def test_septic_rows_earn_the_hand_computed_utility_when_positive() -> None:
    u = row_utilities(SEPTIC, np.ones(25, dtype=bool), [0])
    np.testing.assert_allclose(u, SEPTIC_IF_POSITIVE)
    assert u[D == -12] == 0 and u[D == -6] == 1 and u[D == 3] == 0
    assert u[D == -15] == pytest.approx(-0.05)  # far too early is a false alarm, not worse


def test_septic_rows_cost_the_hand_computed_utility_when_negative() -> None:
    u = row_utilities(SEPTIC, np.zeros(25, dtype=bool), [0])
    np.testing.assert_allclose(u, SEPTIC_IF_NEGATIVE)
    assert u[D == 3] == pytest.approx(-2.0)  # missed at the late edge costs min_u_fn


def test_an_early_an_optimal_and_a_late_alert_score_as_the_reference_says() -> None:
    predictions = np.zeros(25, dtype=bool)
    early, optimal, late = 18 - 9, 18 - 6, 18 + 0
    for row in (early, optimal, late):
        predictions[row] = True
    u = row_utilities(SEPTIC, predictions, [0])
    assert u[early] == pytest.approx(0.5)
    assert u[optimal] == pytest.approx(1.0)
    assert u[late] == pytest.approx(1 - 6 / 9)
    # Every other row in the window is a miss: -2/9 .. -2 except the late row that alerted (d=0 would cost -12/9).
    assert u.sum() == pytest.approx(0.5 + 1.0 + 1 / 3 + (-2 / 9 * 45 + 12 / 9))


def test_a_non_septic_stay_costs_five_hundredths_per_false_alarm() -> None:
    u = row_utilities(NON_SEPTIC, np.array([0, 1, 1, 0, 0], dtype=bool), [0])
    np.testing.assert_allclose(u, [0, -0.05, -0.05, 0, 0])


def test_best_predictions_cover_twelve_hours_before_to_three_after_onset() -> None:
    report = utility_report(SEPTIC, np.zeros(25, dtype=bool), [0])
    # U_best positive on d = -12 .. +3: (0 + 1/6 + ... + 1) + (8/9 + ... + 0) = 3.5 + 4.
    assert report.best == pytest.approx(7.5)
    assert report.inaction == pytest.approx(-10.0)


def test_a_stay_shorter_than_the_window_is_clipped_to_its_own_rows() -> None:
    # Labelled from row 0, four rows: t_sepsis = 6, so the rows sit at d = -6 .. -3 and all of them are "best".
    short = np.array([1, 1, 1, 1])
    report = utility_report(short, np.zeros(4, dtype=bool), [0])
    assert report.best == pytest.approx(1 + 8 / 9 + 7 / 9 + 6 / 9)
    assert report.inaction == pytest.approx(-(2 + 4 + 6) / 9)


def test_normalised_utility_over_several_stays_is_one_for_best_and_zero_for_inaction() -> None:
    labels = np.concatenate([SEPTIC, NON_SEPTIC])
    starts = [0, 25]
    best = np.zeros(30, dtype=bool)
    best[:25][(D >= -12) & (D <= 3)] = True
    assert normalised_utility(labels, best, starts) == pytest.approx(1.0)
    assert normalised_utility(labels, np.zeros(30, dtype=bool), starts) == pytest.approx(0.0)
    # One optimal alert, then silence, plus two false alarms on the other stay:
    # U = 1 + (-10 + 0) - 0.1 = -9.1; normalised = (-9.1 + 10) / (7.5 + 10).
    predictions = np.zeros(30, dtype=bool)
    predictions[[12, 26, 27]] = True
    assert normalised_utility(labels, predictions, starts) == pytest.approx(0.9 / 17.5)


def test_best_threshold_finds_the_cut_that_separates_the_best_rows() -> None:
    labels = np.concatenate([SEPTIC, NON_SEPTIC])
    scores = np.full(30, 0.1)
    scores[:25][(D >= -12) & (D <= 3)] = 0.8
    scores[27] = 0.5  # one non-septic row scored in between: alerting on it would cost 0.05
    threshold, utility = best_threshold(labels, scores, [0, 25])
    assert threshold == pytest.approx(0.8)
    assert utility == pytest.approx(1.0)


def test_mismatched_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="one prediction per label row"):
        row_utilities(SEPTIC, np.zeros(3, dtype=bool), [0])


def test_hourly_auroc_and_auprc_rank_scores() -> None:
    labels = np.array([0, 0, 1, 1])
    assert hourly_auroc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert hourly_auroc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert hourly_auprc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
