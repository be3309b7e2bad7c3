"""Threshold advice on a small history worked out by hand: override rate from feedback, missed events from labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from feedback.advice import advise
from feedback.report import CARD_SCHEMA, RESPONSE_SCHEMA, FeedbackFrames

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
GRID = (0.1, 0.3, 0.5)


def frames() -> FeedbackFrames:
    """Four sepsis cards at scores 0.1, 0.2, 0.4, 0.6: the two lowest were overridden, the others accepted."""
    scores = {"c1": 0.1, "c2": 0.2, "c3": 0.4, "c4": 0.6}
    cards = pl.DataFrame(
        [(uuid, T0, f"p{uuid}", "sepsis-hgb", "icu", "ICU1", s) for uuid, s in scores.items()],
        schema=CARD_SCHEMA,
        orient="row",
    )
    kinds = {"c1": "overridden", "c2": "dismiss", "c3": "accepted", "c4": "acknowledge"}
    responses = pl.DataFrame(
        [(uuid, T0 + timedelta(minutes=5), kind, None, None, True) for uuid, kind in kinds.items()],
        schema=RESPONSE_SCHEMA,
        orient="row",
    )
    return FeedbackFrames(cards, responses)


def replay_rows() -> pl.DataFrame:
    """Two stays of 12 hours. Stay A is labelled from its third row (row 2), so its onset is row 8 (label + 6), and
    it scores 0.35 in rows 0-4, within 8 h before onset: thresholds up to 0.35 catch it. Stay B never turns septic
    and scores 0.2 throughout."""
    a_scores = [0.35] * 5 + [0.05] * 7
    return pl.DataFrame(
        {
            "patient": ["A"] * 12 + ["B"] * 12,
            "unit": ["ICU1"] * 24,
            "hour": list(range(1, 13)) * 2,
            "score": a_scores + [0.2] * 12,
            "sepsis_label": [0] * 2 + [1] * 10 + [0] * 12,
        }
    )


def test_the_override_rate_falls_as_the_threshold_rises_past_the_overridden_cards() -> None:
    advice = advise(frames(), scorer="sepsis-hgb", grid=GRID)

    table = {r["threshold"]: r for r in advice.table.iter_rows(named=True)}
    assert (table[0.1]["cards_shown"], table[0.1]["overridden"], table[0.1]["override_rate"]) == (4, 2, 0.5)
    assert (table[0.3]["cards_shown"], table[0.3]["override_rate"]) == (2, 0.0)
    assert advice.current == 0.1  # the lowest score shown, when no current threshold is given


def test_without_labels_no_threshold_is_suggested() -> None:
    advice = advise(frames(), scorer="sepsis-hgb", grid=GRID)

    assert advice.candidate is None
    assert "no replayed labels" in advice.reason


def test_the_candidate_is_the_highest_threshold_that_misses_no_more_events() -> None:
    advice = advise(frames(), scorer="sepsis-hgb", replay_rows=replay_rows(), grid=GRID)

    table = {r["threshold"]: r for r in advice.table.iter_rows(named=True)}
    assert [table[t]["missed_events"] for t in GRID] == [0, 0, 1]
    # Two 12-hour stays are one patient-day. At 0.1: stay A alerts in 5 rows, stay B in 12; at 0.3 only stay A's 5.
    assert table[0.1]["alerts_per_patient_day"] == pytest.approx(17)
    assert table[0.3]["alerts_per_patient_day"] == pytest.approx(5)
    assert advice.candidate == 0.3
    assert "0 vs 0 of 1 events missed" in advice.reason


def test_allowing_one_more_missed_event_moves_the_candidate_up() -> None:
    advice = advise(frames(), scorer="sepsis-hgb", replay_rows=replay_rows(), grid=GRID, max_extra_missed=1)

    assert advice.candidate == 0.5
