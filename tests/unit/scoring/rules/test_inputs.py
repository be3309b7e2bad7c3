"""Which observation a rule scorer reads (the latest inside the look-back, never one after as_of) and the hash
that identifies the inputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.model import ClinicalContext, Provenance
from scoring.port import FeatureValue
from scoring.rules.inputs import DEFAULT_LOOKBACK, feature_of, feature_text, input_hash, observation_in_window
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


def _by_the_definition(features: dict[str, FeatureValue]) -> str:
    """The hash as its docstring defines it: json.dumps of the canonical document, sorted keys, no spaces."""
    document = {
        name: {
            "value": feature.value,
            "unit": feature.unit,
            "observed_utc": None
            if feature.observed_utc is None
            else (
                feature.observed_utc.astimezone(UTC)
                if feature.observed_utc.tzinfo is not None
                else feature.observed_utc
            ).isoformat(),
            "provenance": None if feature.provenance is None else dataclasses.asdict(feature.provenance),
        }
        for name, feature in features.items()
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_maybe_texts = st.none() | _texts
# Naive and aware moments alike (the bounds of st.datetimes are naive by its contract; zones are drawn apart).
_moments = st.none() | st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - see above
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001 - see above
    timezones=st.none() | st.timezones(),
)
_provenances = st.none() | st.builds(Provenance, _texts, _maybe_texts, _maybe_texts, _maybe_texts)
# Floats and strings are written directly; every other value goes to json.dumps: both must give the same bytes.
_values = st.none() | st.floats(allow_nan=False, allow_infinity=False) | _texts | st.integers() | st.booleans()
_features = st.builds(FeatureValue, _texts, _values, _maybe_texts, _moments, _provenances)


@settings(max_examples=300, deadline=None)
@given(features=st.dictionaries(_texts, _features, max_size=8))
def test_the_input_hash_is_sha256_of_the_canonical_json_document(features: dict[str, FeatureValue]) -> None:
    assert input_hash(features) == _by_the_definition(features)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_refused_as_json_refuses_it(value: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        input_hash({"pulse": FeatureValue("pulse", value)})


def test_known_texts_are_used_only_for_the_very_feature_they_were_written_for() -> None:
    feature = feature_of("pulse", observation("heart_rate", 80))
    twin = dataclasses.replace(feature)  # equal, but another object
    expected = _by_the_definition({"pulse": feature})
    assert input_hash({"pulse": feature}, {id(feature): (feature, feature_text(feature))}) == expected
    # A stale entry under the same id (another object) is passed over, not trusted.
    assert input_hash({"pulse": feature}, {id(feature): (twin, '{"forged":1}')}) == expected
    assert input_hash({"pulse": feature}, {id(feature): (feature, '{"forged":1}')}) != expected
