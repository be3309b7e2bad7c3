"""The canonical objects: the hot path's builders give objects indistinguishable from the classes' own, and the
context's per-kind answers are the ones a fresh scan gives."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from clinical.model import ClinicalContext, ExclusionReason, Observation, Provenance, new_observation, new_provenance

AT = datetime(2024, 12, 25, 10, 0, tzinfo=UTC)


def test_a_built_provenance_is_a_provenance_in_every_respect() -> None:
    built = new_provenance("Observation", "o1", "2", "https://ehr.example.org/fhir")
    plain = Provenance("Observation", "o1", "2", "https://ehr.example.org/fhir")
    assert type(built) is Provenance
    assert built == plain and hash(built) == hash(plain) and repr(built) == repr(plain)
    assert new_provenance("Observation") == Provenance("Observation")  # defaults alike
    assert pickle.loads(pickle.dumps(built)) == plain  # noqa: S301 - our own bytes, round-tripped
    assert copy.copy(built) == plain
    assert dataclasses.replace(built, resource_id="o2") == Provenance("Observation", "o2", "2", plain.source_system)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.resource_id = "o2"  # type: ignore[misc]


def test_a_built_observation_is_an_observation_in_every_respect() -> None:
    prov = new_provenance("Observation", "o1")
    args = ("heart_rate", "8867-4", 88.0, "/min", AT, "2024-12-25T10:00:00Z", "final", prov, 88.0, "/min")
    built, plain = new_observation(*args), Observation(*args)
    assert type(built) is Observation
    assert built == plain and hash(built) == hash(plain) and repr(built) == repr(plain)
    assert dataclasses.asdict(built) == dataclasses.asdict(plain)
    excluded = new_observation(*args[:2], None, None, *args[4:], excluded=ExclusionReason.OUT_OF_RANGE)
    assert excluded == Observation(*args[:2], None, None, *args[4:], excluded=ExclusionReason.OUT_OF_RANGE)
    assert not excluded.usable
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.value = 1.0  # type: ignore[misc]


def _heart_rate(value: float, at: datetime, excluded: ExclusionReason | None = None) -> Observation:
    return Observation(
        "heart_rate", "8867-4", value, "/min", at, None, "final", Provenance("Observation"), None, None, excluded
    )


def test_latest_answers_each_kind_from_its_own_observations_and_again_the_same() -> None:
    context = ClinicalContext(
        patient=None,
        observations=(
            _heart_rate(80, AT),
            _heart_rate(90, AT + timedelta(hours=1)),
            _heart_rate(99, AT + timedelta(hours=2), ExclusionReason.DATA_ABSENT),
            _heart_rate(85, AT + timedelta(hours=1)),  # the first of equal times wins
        ),
    )
    for _ in range(2):  # the second answer comes from the context's memo
        latest = context.latest("heart_rate")
        assert latest is not None and latest.value == 90
        assert context.latest("resp_rate") is None
