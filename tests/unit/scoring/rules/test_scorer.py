"""How a rule scorer turns band hits into a score: criteria counted once, partial scores, explanations and
risk bands, with a fake band matcher in place of durable-rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from scoring.rules import RuleScorer, read_rule_set
from scoring.rules.matcher import Lookup
from scoring.rules.schema import Band, RuleSet
from tests.unit.scoring.rules.builders import AS_OF, context, detail_for, points_for

EXAMPLE = """
id: example
version: "2.1"
title: Example
source: test
rounding: whole numbers, half up.
criteria:
  either:
    determined_by: any
  both:
    determined_by: all
parameters:
  - {name: resp_rate, kind: resp_rate, unit: /min, criterion: either,
     bands: [{max: 20, points: 0}, {min: 21, points: 1}]}
  - {name: paco2, kind: paco2, unit: "mm[Hg]", criterion: either,
     bands: [{max: 31, points: 1}, {min: 32, points: 0}]}
  - {name: heart_rate, kind: heart_rate, unit: /min, criterion: both,
     bands: [{max: 90, points: 0}, {min: 91, points: 2}]}
  - {name: sbp, kind: sbp, unit: "mm[Hg]", criterion: both,
     bands: [{max: 100, points: 2}, {min: 101, points: 0}]}
  - {name: temperature, kind: temperature, unit: Cel, precision: 1,
     bands: [{max: 38.0, points: 0}, {min: 38.1, points: 3}]}
risk_bands:
  - {band: high, min_score: 5}
  - {band: single-three, any_single_points: 3}
  - {band: low}
"""


class FakeMatcher:
    """Looks values up by the printed ranges; stands in for durable-rules in unit tests."""

    def __init__(self, rule_set: RuleSet) -> None:
        self._parameters = {parameter.name: parameter for parameter in rule_set.parameters}
        self.calls: list[list[Lookup]] = []

    def match(self, lookups: Sequence[Lookup]) -> dict[str, int]:
        self.calls.append(list(lookups))
        found: dict[str, int] = {}
        for lookup in lookups:
            bands = self._parameters[lookup.parameter].all_tables[lookup.table].bands
            for index, band in enumerate(bands):
                if _holds(band, lookup.value):
                    found[lookup.parameter] = index
        return found


def _holds(band: Band, value: float | str) -> bool:
    if band.codes is not None or isinstance(value, str):
        return band.codes is not None and value in band.codes
    return (band.min is None or value >= band.min) and (band.max is None or value <= band.max)


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[RuleSet, str]:
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    return read_rule_set(path)


@pytest.fixture
def fake(loaded: tuple[RuleSet, str]) -> FakeMatcher:
    return FakeMatcher(loaded[0])


@pytest.fixture
def scorer(loaded: tuple[RuleSet, str], fake: FakeMatcher) -> RuleScorer:
    return RuleScorer(*loaded, fake)


NORMAL: dict[str, float | str] = {"resp_rate": 16, "paco2": 40, "heart_rate": 70, "sbp": 120, "temperature": 37.0}


def test_a_criterion_met_by_two_parameters_counts_once(scorer: RuleScorer) -> None:
    output = scorer.score(context({**NORMAL, "resp_rate": 25, "paco2": 28}), AS_OF)[0]
    assert output.score == 1
    assert (points_for(output, "resp_rate"), points_for(output, "paco2")) == (1, 0)
    assert "counted once" in detail_for(output, "paco2")


def test_an_any_criterion_is_decided_by_one_available_parameter(scorer: RuleScorer) -> None:
    values = {kind: value for kind, value in NORMAL.items() if kind != "paco2"}
    output = scorer.score(context(values), AS_OF)[0]
    assert not output.partial


def test_an_all_criterion_needs_every_parameter_unless_already_at_its_highest(scorer: RuleScorer) -> None:
    without_sbp = {kind: value for kind, value in NORMAL.items() if kind != "sbp"}
    normal_pulse = scorer.score(context(without_sbp), AS_OF)[0]
    fast_pulse = scorer.score(context({**without_sbp, "heart_rate": 120}), AS_OF)[0]
    assert normal_pulse.missing == ("sbp",)
    assert not fast_pulse.partial
    assert fast_pulse.score == 2


def test_a_partial_score_says_so_first_and_keeps_the_band_from_available_points(scorer: RuleScorer) -> None:
    output = scorer.score(context({"temperature": 39.0}), AS_OF)[0]
    assert output.partial
    assert output.missing == ("resp_rate", "paco2", "heart_rate", "sbp")
    assert output.score == 3
    assert output.band == "single-three"
    assert output.explanation[0].feature == "partial"
    assert "single-three" in output.explanation[0].detail


def test_risk_bands_are_checked_in_file_order(scorer: RuleScorer) -> None:
    high = scorer.score(context({**NORMAL, "temperature": 39.0, "heart_rate": 120}), AS_OF)[0]
    assert (high.score, high.band) == (5, "high")
    assert scorer.score(context(NORMAL), AS_OF)[0].band == "low"


def test_the_matcher_is_given_rounded_values(scorer: RuleScorer, fake: FakeMatcher) -> None:
    scorer.score(context({**NORMAL, "temperature": 38.05, "heart_rate": 90.5}), AS_OF)
    lookups = {lookup.parameter: lookup.value for lookup in fake.calls[-1]}
    assert lookups["temperature"] == 38.1
    assert lookups["heart_rate"] == 91.0


def test_missing_parameters_are_not_sent_to_the_matcher(scorer: RuleScorer, fake: FakeMatcher) -> None:
    scorer.score(context({"temperature": 37.0}), AS_OF)
    assert [lookup.parameter for lookup in fake.calls[-1]] == ["temperature"]


def test_the_version_joins_the_rule_set_version_and_its_content_hash(scorer: RuleScorer) -> None:
    assert scorer.version == f"2.1+{scorer.content_hash[:12]}"
    assert scorer.scorer_id == "example"


def test_a_non_positive_look_back_is_refused(loaded: tuple[RuleSet, str], fake: FakeMatcher) -> None:
    with pytest.raises(ValueError, match="look-back"):
        RuleScorer(*loaded, fake, lookback=timedelta(0))
