"""Threshold sweep on hand-made stays: each point is a replay arm at that threshold, and the budget rule picks one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.document import load_policy
from shadow.candidates import Candidate
from shadow.inputs import ReplayInput
from shadow.metrics import alert_metrics, stay_stats
from shadow.passes import ALERTING, ScorerInfo, run_policies
from shadow.sweep import default_grid, first_stays, parse_grid, recommend, sweep, write_sweep

SCORER = ScorerInfo("sepsis-hgb", "test", (("high", 0.5), ("low", 0.0)))
# Every high-band output surfaces, with no de-duplication: the alert stream is exactly the rows at or above the
# threshold, so the expected figures can be counted by hand.
EVERY_HIGH_ROW = load_policy(
    """
id: every-high-row
version: "1.0.0"
scorers: {sepsis-hgb: [low, high]}
defaults: {action: surface, budget: false}
routes:
  - name: low
    match: {band: low}
    action: suppress
    reason: below-threshold
"""
)


def _stays() -> ReplayInput:
    # Stay 0 (12 h) turns septic: first label at t=8, onset t=14 (after the stay's end: the 8 h window is t 6..11).
    # Stay 1 (12 h) never does. Scores climb in stay 0 and sit at 0.3 / 0.6 in stay 1.
    scores = np.concatenate([np.linspace(0.1, 0.9, 12), np.array([0.3] * 6 + [0.6] * 6)]).astype(np.float32)
    labels = np.zeros(24, dtype=np.int8)
    labels[8:12] = 1
    return ReplayInput(
        stay_ids=("a", "b"),
        starts=np.array([0, 12]),
        hours=np.concatenate([np.arange(1, 13), np.arange(1, 13)]),
        scores=scores,
        labels=labels,
        units=("MICU", "SICU"),
        ages=np.array([60.0, 70.0]),
        partial=np.zeros(24, dtype=bool),
        last_measured={},
    )


def test_each_sweep_point_is_the_replay_arm_with_that_threshold() -> None:
    data = _stays()
    frame = sweep(data, SCORER, EVERY_HIGH_ROW, (0.25, 0.55, 0.95), policy="every-high-row", workers=1, bootstrap=20)
    assert frame["threshold"].to_list() == [0.25, 0.55, 0.95]
    for t in (0.25, 0.55, 0.95):
        (actions,) = run_policies(data, SCORER, [Candidate("arm", EVERY_HIGH_ROW, t)], workers=1)
        expected = alert_metrics(stay_stats(data.labels, np.isin(actions, ALERTING), data.starts), np.ones(2))
        row = frame.filter(threshold=t).row(0, named=True)
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, nan_ok=True), name


def test_alerts_per_patient_day_count_the_rows_at_or_above_the_threshold_under_a_policy_without_silencing() -> None:
    data = _stays()
    frame = sweep(data, SCORER, EVERY_HIGH_ROW, (0.55,), policy="every-high-row", workers=1, bootstrap=20)
    row = frame.row(0, named=True)
    assert row["alerts_per_patient_day"] == pytest.approx(np.sum(data.scores >= 0.55) * 24 / 24)
    assert row["event_recall"] == 1.0  # stay 0 scores >= 0.55 from t=6, inside the 8 h before onset
    assert row["alerts_per_patient_day_lo"] <= row["alerts_per_patient_day"] <= row["alerts_per_patient_day_hi"]


def _curve() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "threshold": [0.1, 0.2, 0.3, 0.4],
            "alerts_per_patient_day": [3.0, 1.8, 1.2, 0.5],
            "event_recall": [0.95, 0.8, 0.8, 0.6],
            "alerts_per_patient_day_lo": [2.5, 1.5, 1.0, 0.4],
            "alerts_per_patient_day_hi": [3.5, 2.1, 1.4, 0.6],
        }
    )


def test_the_recommendation_is_the_best_recall_within_budget_and_a_tie_goes_to_fewer_alerts() -> None:
    chosen = recommend(_curve(), budget=2.0)
    assert chosen.threshold == 0.3  # 0.2 and 0.3 both recall 0.8 within 2.0; 0.3 alerts less
    assert "budget of 2" in chosen.reason and "highest event recall (80.0%)" in chosen.reason
    assert recommend(_curve(), budget=5.0).threshold == 0.1
    assert recommend(_curve(), budget=1.0).threshold == 0.4


def test_no_threshold_is_recommended_when_none_meets_the_budget_and_the_reason_says_so() -> None:
    chosen = recommend(_curve(), budget=0.2)
    assert chosen.threshold is None
    assert "fewest: 0.50 at threshold 0.4" in chosen.reason


def test_no_threshold_is_recommended_when_recall_is_undefined_as_on_unlabelled_data() -> None:
    chosen = recommend(_curve().with_columns(pl.lit(float("nan")).alias("event_recall")), budget=2.0)
    assert chosen.threshold is None
    assert "not defined" in chosen.reason


def test_the_written_sweep_carries_its_budget_and_marks_the_recommended_row(tmp_path: Path) -> None:
    written = pl.read_parquet(write_sweep(_curve(), 2.0, tmp_path))
    assert written.filter("recommended")["threshold"].to_list() == [0.3]
    assert set(written["budget"]) == {2.0}
    unbudgeted = pl.read_parquet(write_sweep(_curve(), None, tmp_path))
    assert not unbudgeted["recommended"].any()
    assert unbudgeted["budget"].is_nan().all()


def test_a_grid_is_a_list_or_an_inclusive_range() -> None:
    assert parse_grid("0.3,0.1, 0.2") == (0.1, 0.2, 0.3)
    assert parse_grid("0.02:0.1:0.02") == (0.02, 0.04, 0.06, 0.08, 0.1)
    with pytest.raises(ValueError, match="start:stop:step"):
        parse_grid("0.5:0.1:0.1")


def test_the_default_grid_spans_the_upper_half_of_the_scores_and_keeps_the_live_threshold() -> None:
    scores = np.random.default_rng(5).random(10_000)
    grid = default_grid(scores, points=6, keep=(0.123456,))
    assert 0.123456 in grid
    assert list(grid) == sorted(grid)
    others = [t for t in grid if t != 0.123456]
    assert len(others) == 6
    assert min(others) == pytest.approx(0.5, abs=0.03) and max(others) == pytest.approx(0.995, abs=0.01)


def test_the_first_stays_are_the_lowest_ids_of_a_folder(tmp_path: Path) -> None:
    for name in ("p000003", "p000001", "p000002"):
        (tmp_path / f"{name}.psv").write_text("HR|SepsisLabel\n80|0\n")
    assert first_stays(tmp_path, 2) == ["p000001", "p000002"]


@given(
    st.lists(st.tuples(st.floats(0, 10, allow_nan=False), st.floats(0, 1, allow_nan=False)), min_size=1, max_size=12),
    st.floats(0, 10, allow_nan=False),
)
def test_no_threshold_within_budget_has_better_recall_than_the_recommended_one(
    points: list[tuple[float, float]], budget: float
) -> None:
    frame = pl.DataFrame(
        {
            "threshold": [0.01 * (i + 1) for i in range(len(points))],
            "alerts_per_patient_day": [p[0] for p in points],
            "event_recall": [p[1] for p in points],
            "alerts_per_patient_day_lo": [p[0] for p in points],
            "alerts_per_patient_day_hi": [p[0] for p in points],
        }
    )
    chosen = recommend(frame, budget)
    within = frame.filter(pl.col("alerts_per_patient_day") <= budget)
    if within.is_empty():
        assert chosen.threshold is None
        return
    row = frame.filter(threshold=chosen.threshold).row(0, named=True)
    assert row["alerts_per_patient_day"] <= budget
    assert row["event_recall"] == within["event_recall"].max()
