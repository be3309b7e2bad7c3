"""NEWS2 chart 1, every printed boundary from both sides, through the bundled rule set and real durable-rules."""

from __future__ import annotations

import pytest

from scoring.rules import RuleScorer
from tests.unit.scoring.rules.builders import AS_OF, detail_for, news2_context, points_for

# (kind that changes, value, parameter in the explanation, expected points). Every other parameter scores 0.
SINGLE_PARAMETER_BOUNDARIES = [
    ("resp_rate", 8, "resp_rate", 3),
    ("resp_rate", 9, "resp_rate", 1),
    ("resp_rate", 11, "resp_rate", 1),
    ("resp_rate", 12, "resp_rate", 0),
    ("resp_rate", 20, "resp_rate", 0),
    ("resp_rate", 21, "resp_rate", 2),
    ("resp_rate", 24, "resp_rate", 2),
    ("resp_rate", 25, "resp_rate", 3),
    ("spo2", 91, "spo2", 3),
    ("spo2", 92, "spo2", 2),
    ("spo2", 93, "spo2", 2),
    ("spo2", 94, "spo2", 1),
    ("spo2", 95, "spo2", 1),
    ("spo2", 96, "spo2", 0),
    ("sbp", 90, "sbp", 3),
    ("sbp", 91, "sbp", 2),
    ("sbp", 100, "sbp", 2),
    ("sbp", 101, "sbp", 1),
    ("sbp", 110, "sbp", 1),
    ("sbp", 111, "sbp", 0),
    ("sbp", 219, "sbp", 0),
    ("sbp", 220, "sbp", 3),
    ("heart_rate", 40, "pulse", 3),
    ("heart_rate", 41, "pulse", 1),
    ("heart_rate", 50, "pulse", 1),
    ("heart_rate", 51, "pulse", 0),
    ("heart_rate", 90, "pulse", 0),
    ("heart_rate", 91, "pulse", 1),
    ("heart_rate", 110, "pulse", 1),
    ("heart_rate", 111, "pulse", 2),
    ("heart_rate", 130, "pulse", 2),
    ("heart_rate", 131, "pulse", 3),
    ("temperature", 35.0, "temperature", 3),
    ("temperature", 35.1, "temperature", 1),
    ("temperature", 36.0, "temperature", 1),
    ("temperature", 36.1, "temperature", 0),
    ("temperature", 38.0, "temperature", 0),
    ("temperature", 38.1, "temperature", 1),
    ("temperature", 39.0, "temperature", 1),
    ("temperature", 39.1, "temperature", 2),
    ("consciousness", "A", "consciousness", 0),
    ("consciousness", "C", "consciousness", 3),
    ("consciousness", "V", "consciousness", 3),
    ("consciousness", "P", "consciousness", 3),
    ("consciousness", "U", "consciousness", 3),
    ("oxygen_therapy", "air", "oxygen_therapy", 0),
    ("oxygen_therapy", "oxygen", "oxygen_therapy", 2),
]


@pytest.mark.parametrize(
    ("kind", "value", "parameter", "points"),
    SINGLE_PARAMETER_BOUNDARIES,
    ids=[f"{kind}={value}->{points}" for kind, value, _, points in SINGLE_PARAMETER_BOUNDARIES],
)
def test_each_side_of_each_printed_boundary_scores_as_the_chart_says(
    news2: RuleScorer, kind: str, value: float | str, parameter: str, points: int
) -> None:
    output = news2.score(news2_context(**{kind: value}), AS_OF)[0]
    assert points_for(output, parameter) == points
    assert output.score == points
    assert not output.partial


SCALE_2 = [
    # (SpO2, points on air, points on oxygen): 88-92 scores 0 either way; 93 and above only on oxygen.
    (83, 3, 3),
    (84, 2, 2),
    (85, 2, 2),
    (86, 1, 1),
    (87, 1, 1),
    (88, 0, 0),
    (92, 0, 0),
    (93, 0, 1),
    (94, 0, 1),
    (95, 0, 2),
    (96, 0, 2),
    (97, 0, 3),
    (100, 0, 3),
]


@pytest.mark.parametrize(("spo2", "on_air", "on_oxygen"), SCALE_2, ids=[f"spo2={row[0]}" for row in SCALE_2])
def test_scale_2_scores_each_band_on_air_and_on_oxygen(
    news2: RuleScorer, spo2: int, on_air: int, on_oxygen: int
) -> None:
    air = news2.score(news2_context(spo2=spo2, spo2_scale2_target="true", oxygen_therapy="air"), AS_OF)[0]
    oxygen = news2.score(news2_context(spo2=spo2, spo2_scale2_target="true", oxygen_therapy="oxygen"), AS_OF)[0]
    assert points_for(air, "spo2") == on_air
    assert points_for(oxygen, "spo2") == on_oxygen
    # Oxygen itself still scores 2 on top of the SpO2 points.
    assert oxygen.score == on_oxygen + 2
    assert "scale 2, on oxygen" in detail_for(oxygen, "spo2")


def test_scale_1_is_used_when_no_prescribed_target_is_recorded(news2: RuleScorer) -> None:
    output = news2.score(news2_context(spo2=88, oxygen_therapy="oxygen"), AS_OF)[0]
    assert points_for(output, "spo2") == 3
    assert "scale 1" in detail_for(output, "spo2")
    assert output.features["spo2_scale2_target"].value == "false"


def test_scale_1_is_used_when_the_target_is_recorded_as_not_prescribed(news2: RuleScorer) -> None:
    output = news2.score(news2_context(spo2=88, spo2_scale2_target="false"), AS_OF)[0]
    assert points_for(output, "spo2") == 3


BETWEEN_BANDS = [
    # Rounded half up to the printed precision (0.1 °C for temperature, whole numbers otherwise), then looked up.
    ("temperature", 35.05, "temperature", 1),
    ("temperature", 35.04, "temperature", 3),
    ("temperature", 36.05, "temperature", 0),
    ("temperature", 36.04, "temperature", 1),
    ("temperature", 38.05, "temperature", 1),
    ("temperature", 39.05, "temperature", 2),
    ("resp_rate", 20.5, "resp_rate", 2),
    ("resp_rate", 20.4, "resp_rate", 0),
    ("resp_rate", 8.5, "resp_rate", 1),
    ("resp_rate", 24.5, "resp_rate", 3),
    ("spo2", 95.5, "spo2", 0),
    ("spo2", 91.5, "spo2", 2),
    ("spo2", 91.4, "spo2", 3),
    ("sbp", 100.5, "sbp", 1),
    ("sbp", 110.4, "sbp", 1),
    ("sbp", 219.5, "sbp", 3),
    ("heart_rate", 90.5, "pulse", 1),
    ("heart_rate", 40.5, "pulse", 1),
    ("heart_rate", 130.5, "pulse", 3),
]


@pytest.mark.parametrize(
    ("kind", "value", "parameter", "points"),
    BETWEEN_BANDS,
    ids=[f"{kind}={value}->{points}" for kind, value, _, points in BETWEEN_BANDS],
)
def test_values_between_printed_bands_are_rounded_half_up_then_looked_up(
    news2: RuleScorer, kind: str, value: float, parameter: str, points: int
) -> None:
    output = news2.score(news2_context(**{kind: value}), AS_OF)[0]
    assert points_for(output, parameter) == points
    assert "rounded half up" in detail_for(output, parameter)


def test_the_rule_set_file_states_the_rounding_rule(news2: RuleScorer) -> None:
    assert "rounded half up" in news2.rule_set.rounding
    assert "35.05" in news2.rule_set.rounding
