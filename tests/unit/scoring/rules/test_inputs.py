"""Which observation a rule scorer reads (the latest inside the look-back, never one after as_of) and the hash
that identifies the inputs."""

from __future__ import annotations

from datetime import timedelta, timezone

from clinical.model import ClinicalContext
from scoring.port import FeatureValue
from scoring.rules.inputs import DEFAULT_LOOKBACK, feature_of, input_hash, observation_in_window
from tests.unit.scoring.rules.builders import AS_OF, observation


def _window(*hours_ago: float, lookback: timedelta = DEFAULT_LOOKBACK) -> float | None:
    observations = tuple(
        observation("heart_rate", 60 + index, hours_ago=hours) for index, hours in enumerate(hours_ago)
    )
    found = observation_in_window(
        ClinicalContext(patient=None, observations=observations), "heart_rate", AS_OF, lookback
    )
    return None if found is None else found.value


def test_the_default_look_back_is_24_hours() -> None:
    assert timedelta(hours=24) == DEFAULT_LOOKBACK


def test_an_observation_exactly_at_the_edge_of_the_look_back_is_used() -> None:
    assert _window(24) == 60


def test_an_observation_just_older_than_the_look_back_is_missing() -> None:
    assert _window(24 + 1 / 3600) is None


def test_the_latest_observation_in_the_window_wins() -> None:
    assert _window(5, 1, 3) == 61


def test_observations_after_as_of_are_passed_over_for_the_latest_before_it() -> None:
    assert _window(2, -1) == 60
    assert _window(-1) is None


def test_a_shorter_look_back_drops_older_observations() -> None:
    assert _window(3, lookback=timedelta(hours=2)) is None


def test_the_input_hash_is_the_same_for_the_same_instant_written_with_another_offset() -> None:
    feature = feature_of("pulse", observation("heart_rate", 80))
    assert feature.observed_utc is not None
    shifted = FeatureValue(
        feature.name,
        feature.value,
        feature.unit,
        feature.observed_utc.astimezone(timezone(timedelta(hours=2))),
        feature.provenance,
    )
    assert input_hash({"pulse": feature}) == input_hash({"pulse": shifted})


def test_the_input_hash_changes_with_value_time_or_source() -> None:
    base = feature_of("pulse", observation("heart_rate", 80))
    variants = [
        feature_of("pulse", observation("heart_rate", 81)),
        feature_of("pulse", observation("heart_rate", 80, hours_ago=2)),
        feature_of("pulse", observation("heart_rate", 80, resource_id="another")),
    ]
    hashes = {input_hash({"pulse": feature}) for feature in [base, *variants]}
    assert len(hashes) == 4


def test_a_missing_feature_is_part_of_the_hash() -> None:
    present = feature_of("pulse", observation("heart_rate", 80))
    assert input_hash({"pulse": present}) != input_hash({"pulse": present, "spo2": FeatureValue("spo2", None)})
