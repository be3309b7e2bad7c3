"""qSOFA and SIRS thresholds from both sides, through the bundled rule sets and real durable-rules."""

from __future__ import annotations

import pytest

from scoring.rules import RuleScorer
from tests.unit.scoring.rules.builders import AS_OF, context, detail_for, points_for

QSOFA_NORMAL: dict[str, float | str] = {"resp_rate": 16, "gcs_total": 15, "consciousness": "A", "sbp": 120}

QSOFA_THRESHOLDS = [
    ("resp_rate", 21, "resp_rate", 0),
    ("resp_rate", 22, "resp_rate", 1),
    ("resp_rate", 21.5, "resp_rate", 1),
    ("sbp", 101, "sbp", 0),
    ("sbp", 100, "sbp", 1),
    ("sbp", 100.5, "sbp", 0),
    ("gcs_total", 15, "gcs_total", 0),
    ("gcs_total", 14, "gcs_total", 1),
    ("consciousness", "A", "consciousness", 0),
    ("consciousness", "C", "consciousness", 1),
    ("consciousness", "V", "consciousness", 1),
]


@pytest.mark.parametrize(
    ("kind", "value", "parameter", "points"),
    QSOFA_THRESHOLDS,
    ids=[f"{kind}={value}->{points}" for kind, value, _, points in QSOFA_THRESHOLDS],
)
def test_qsofa_criteria_are_met_exactly_at_their_thresholds(
    qsofa: RuleScorer, kind: str, value: float | str, parameter: str, points: int
) -> None:
    output = qsofa.score(context({**QSOFA_NORMAL, kind: value}), AS_OF)[0]
    assert points_for(output, parameter) == points
    assert output.score == points
    assert output.band == "negative"


@pytest.mark.parametrize(
    ("changes", "score", "band"),
    [
        ({"resp_rate": 22}, 1, "negative"),
        ({"resp_rate": 22, "sbp": 100}, 2, "positive"),
        ({"resp_rate": 22, "sbp": 100, "gcs_total": 13}, 3, "positive"),
        ({"sbp": 95, "consciousness": "C"}, 2, "positive"),
    ],
    ids=["one criterion", "two criteria", "three criteria", "mentation from ACVPU"],
)
def test_qsofa_is_positive_at_two_criteria(
    qsofa: RuleScorer, changes: dict[str, float | str], score: int, band: str
) -> None:
    output = qsofa.score(context({**QSOFA_NORMAL, **changes}), AS_OF)[0]
    assert (output.score, output.band) == (score, band)


def test_altered_mentation_counts_once_when_gcs_and_acvpu_both_show_it(qsofa: RuleScorer) -> None:
    output = qsofa.score(context({**QSOFA_NORMAL, "gcs_total": 12, "consciousness": "V"}), AS_OF)[0]
    assert output.score == 1
    assert "counted once" in detail_for(output, "consciousness")


def test_acvpu_alone_decides_mentation_when_no_gcs_is_recorded(qsofa: RuleScorer) -> None:
    values = {key: value for key, value in QSOFA_NORMAL.items() if key != "gcs_total"}
    output = qsofa.score(context(values), AS_OF)[0]
    assert not output.partial
    assert output.missing == ()


SIRS_NORMAL: dict[str, float | str] = {"temperature": 37.0, "heart_rate": 70, "resp_rate": 14, "paco2": 40, "wbc": 8.0}

SIRS_THRESHOLDS = [
    ("temperature", 38.0, "temperature", 0),
    ("temperature", 38.1, "temperature", 1),
    ("temperature", 36.0, "temperature", 0),
    ("temperature", 35.9, "temperature", 1),
    ("temperature", 38.05, "temperature", 1),
    ("temperature", 35.95, "temperature", 0),
    ("heart_rate", 90, "heart_rate", 0),
    ("heart_rate", 91, "heart_rate", 1),
    ("heart_rate", 90.5, "heart_rate", 1),
    ("resp_rate", 20, "resp_rate", 0),
    ("resp_rate", 21, "resp_rate", 1),
    ("paco2", 32.0, "paco2", 0),
    ("paco2", 31.9, "paco2", 1),
    ("paco2", 31.95, "paco2", 0),
    ("wbc", 12.0, "wbc", 0),
    ("wbc", 12.1, "wbc", 1),
    ("wbc", 4.0, "wbc", 0),
    ("wbc", 3.9, "wbc", 1),
]


@pytest.mark.parametrize(
    ("kind", "value", "parameter", "points"),
    SIRS_THRESHOLDS,
    ids=[f"{kind}={value}->{points}" for kind, value, _, points in SIRS_THRESHOLDS],
)
def test_sirs_criteria_are_met_just_past_their_thresholds(
    sirs: RuleScorer, kind: str, value: float, parameter: str, points: int
) -> None:
    output = sirs.score(context({**SIRS_NORMAL, kind: value}), AS_OF)[0]
    assert points_for(output, parameter) == points
    assert output.score == points


@pytest.mark.parametrize(
    ("changes", "score", "band"),
    [
        ({"heart_rate": 91}, 1, "negative"),
        ({"heart_rate": 91, "temperature": 38.1}, 2, "positive"),
        ({"heart_rate": 91, "temperature": 35.9, "resp_rate": 21, "wbc": 3.9}, 4, "positive"),
        ({"resp_rate": 21, "paco2": 30}, 1, "negative"),
    ],
    ids=["one criterion", "two criteria", "all four", "rate and PaCO2 are one criterion"],
)
def test_sirs_is_positive_at_two_criteria(sirs: RuleScorer, changes: dict[str, float], score: int, band: str) -> None:
    output = sirs.score(context({**SIRS_NORMAL, **changes}), AS_OF)[0]
    assert (output.score, output.band) == (score, band)


def test_sirs_says_immature_band_forms_are_not_assessed(sirs: RuleScorer) -> None:
    output = sirs.score(context(SIRS_NORMAL), AS_OF)[0]
    assert "band forms" in detail_for(output, "wbc")
    assert any("not in the canonical" in note for note in sirs.rule_set.notes)


def test_sirs_needs_no_paco2_when_the_respiratory_rate_is_recorded(sirs: RuleScorer) -> None:
    values = {key: value for key, value in SIRS_NORMAL.items() if key != "paco2"}
    assert not sirs.score(context(values), AS_OF)[0].partial
