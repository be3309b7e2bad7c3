"""NEWS2 aggregate and clinical risk bands, including low-medium from a single parameter scoring 3."""

from __future__ import annotations

import pytest

from scoring.rules import RuleScorer
from tests.unit.scoring.rules.builders import AS_OF, news2_context

RISK = [
    # (changes from all-normal, aggregate, band, why)
    ({}, 0, "low", "all normal"),
    ({"resp_rate": 21, "heart_rate": 111}, 4, "low", "aggregate 4 made of 2s"),
    ({"resp_rate": 8}, 3, "low-medium", "a single 3 with aggregate 3"),
    ({"consciousness": "C", "heart_rate": 91}, 4, "low-medium", "a single 3 with aggregate 4"),
    ({"resp_rate": 21, "heart_rate": 111, "temperature": 38.5}, 5, "medium", "aggregate 5 with no 3"),
    ({"resp_rate": 25, "heart_rate": 111}, 5, "medium", "aggregate 5 outranks a single 3"),
    ({"resp_rate": 25, "heart_rate": 111, "temperature": 38.5}, 6, "medium", "aggregate 6"),
    ({"resp_rate": 25, "heart_rate": 111, "oxygen_therapy": "oxygen"}, 7, "high", "aggregate 7"),
    (
        {
            "resp_rate": 25,
            "heart_rate": 131,
            "sbp": 90,
            "consciousness": "U",
            "spo2": 91,
            "temperature": 35.0,
            "oxygen_therapy": "oxygen",
        },
        20,
        "high",
        "every parameter at its worst",
    ),
]


@pytest.mark.parametrize(("changes", "aggregate", "band"), [row[:3] for row in RISK], ids=[row[3] for row in RISK])
def test_aggregate_score_gives_the_clinical_risk_band(
    news2: RuleScorer, changes: dict[str, float | str], aggregate: int, band: str
) -> None:
    output = news2.score(news2_context(**changes), AS_OF)[0]
    assert output.score == aggregate
    assert output.band == band


def test_explanation_points_add_up_to_the_score(news2: RuleScorer) -> None:
    output = news2.score(news2_context(resp_rate=25, heart_rate=111, temperature=35.05), AS_OF)[0]
    assert sum(line.points for line in output.explanation) == output.score == 6
