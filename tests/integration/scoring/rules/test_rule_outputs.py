"""What every rule-score output carries: partial scores with their missing inputs, features with provenance,
the input hash, the look-back window and the scorer's version."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from clinical.model import ClinicalContext, ExclusionReason
from scoring.port import NO_DATA_BAND, Scorer
from scoring.rules import RuleScorer, load_rule_scorers
from tests.unit.scoring.rules.builders import AS_OF, NEWS2_NORMAL, context, detail_for, news2_context, observation


def test_missing_input_gives_a_partial_score_that_names_it(news2: RuleScorer) -> None:
    output = news2.score(news2_context(spo2=None, resp_rate=25), AS_OF)[0]
    assert output.partial
    assert output.missing == ("spo2",)
    assert output.score == 3
    assert output.band == "low-medium"  # from the available points
    assert output.explanation[0].feature == "partial"
    assert "spo2" in output.explanation[0].detail
    assert "not scored" in detail_for(output, "spo2")
    assert output.features["spo2"].value is None


def test_a_context_with_nothing_usable_is_partial_not_a_silent_zero(news2: RuleScorer) -> None:
    output = news2.score(ClinicalContext(patient=None), AS_OF)[0]
    assert output.partial
    assert output.score is None
    assert output.band == NO_DATA_BAND
    assert set(output.missing) == {
        "resp_rate",
        "spo2",
        "oxygen_therapy",
        "sbp",
        "pulse",
        "consciousness",
        "temperature",
    }


def test_complete_inputs_give_a_complete_score(news2: RuleScorer) -> None:
    output = news2.score(news2_context(), AS_OF)[0]
    assert not output.partial
    assert output.missing == ()
    assert all(line.feature != "partial" for line in output.explanation)


def test_observations_older_than_the_look_back_count_as_missing(news2: RuleScorer) -> None:
    stale = observation("heart_rate", 140, hours_ago=25)
    values = {kind: value for kind, value in NEWS2_NORMAL.items() if kind != "heart_rate"}
    output = news2.score(context(values, stale), AS_OF)[0]
    assert output.missing == ("pulse",)
    assert "24 h" in detail_for(output, "pulse")


def test_the_look_back_is_configurable() -> None:
    scorer = {s.scorer_id: s for s in load_rule_scorers(lookback=timedelta(hours=48))}["news2"]
    values = {kind: value for kind, value in NEWS2_NORMAL.items() if kind != "heart_rate"}
    output = scorer.score(context(values, observation("heart_rate", 140, hours_ago=25)), AS_OF)[0]
    assert not output.partial
    assert output.score == 3


def test_an_observation_after_as_of_is_not_used_when_scoring_the_past(news2: RuleScorer) -> None:
    later = observation("heart_rate", 140, hours_ago=-2)
    output = news2.score(context(NEWS2_NORMAL, later), AS_OF)[0]
    assert output.score == 0
    assert output.features["pulse"].value == 70


def test_the_latest_observation_in_the_window_is_used(news2: RuleScorer) -> None:
    newer = observation("heart_rate", 135, hours_ago=0.5, resource_id="hr-newer")
    output = news2.score(context(NEWS2_NORMAL, newer), AS_OF)[0]
    assert output.score == 3
    assert output.features["pulse"].provenance is not None
    assert output.features["pulse"].provenance.resource_id == "hr-newer"


def test_an_excluded_observation_is_missing_rather_than_scored(news2: RuleScorer) -> None:
    values = {kind: value for kind, value in NEWS2_NORMAL.items() if kind != "sbp"}
    wrong = observation("sbp", 80, excluded=ExclusionReason.ENTERED_IN_ERROR)
    output = news2.score(context(values, wrong), AS_OF)[0]
    assert output.missing == ("sbp",)


def test_a_code_the_table_does_not_know_is_missing_rather_than_scored(news2: RuleScorer) -> None:
    output = news2.score(news2_context(consciousness="confused"), AS_OF)[0]
    assert output.missing == ("consciousness",)
    assert "code" in detail_for(output, "consciousness")


def test_scale_2_on_high_saturation_without_air_or_oxygen_is_missing_not_guessed(news2: RuleScorer) -> None:
    output = news2.score(news2_context(spo2=95, spo2_scale2_target="true", oxygen_therapy=None), AS_OF)[0]
    assert set(output.missing) == {"spo2", "oxygen_therapy"}
    assert "oxygen_therapy" in detail_for(output, "spo2")


def test_features_carry_value_unit_provenance_and_observed_time(news2: RuleScorer) -> None:
    output = news2.score(news2_context(temperature=38.45), AS_OF)[0]
    feature = output.features["temperature"]
    assert (feature.value, feature.unit) == (38.45, "Cel")
    assert feature.observed_utc == AS_OF - timedelta(hours=1)
    assert feature.provenance is not None
    assert feature.provenance.resource_id == "obs-temperature"
    assert output.as_of == AS_OF


def test_the_input_hash_follows_the_inputs_and_nothing_else(news2: RuleScorer) -> None:
    first = news2.score(news2_context(), AS_OF)[0]
    again = news2.score(news2_context(), AS_OF)[0]
    changed = news2.score(news2_context(heart_rate=71), AS_OF)[0]
    unrelated = news2.score(context(NEWS2_NORMAL, observation("wbc", 9.0)), AS_OF)[0]
    assert re.fullmatch(r"[0-9a-f]{64}", first.input_hash)
    assert first.input_hash == again.input_hash == unrelated.input_hash
    assert changed.input_hash != first.input_hash


def test_the_version_is_the_rule_set_version_and_a_content_hash(rule_scorers: dict[str, RuleScorer]) -> None:
    for scorer in rule_scorers.values():
        output = scorer.score(ClinicalContext(patient=None), AS_OF)[0]
        assert output.scorer_id == scorer.scorer_id
        assert re.fullmatch(re.escape(scorer.rule_set.version) + r"\+[0-9a-f]{12}", output.scorer_version)
        assert isinstance(scorer, Scorer)


def test_a_naive_as_of_is_refused(news2: RuleScorer) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        news2.score(news2_context(), AS_OF.replace(tzinfo=None))
