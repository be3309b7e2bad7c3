"""Canary bucketing is sticky, serves the stated fraction, and only serves for canary or live candidates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shadow.canary import assign, bucket, new_salt
from shadow.stages import (
    BucketBy,
    CandidateKind,
    CandidateRecord,
    RefusalReason,
    Stage,
    StageChangeRefused,
    check_transition,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEYS = [f"patient-{i}" for i in range(20_000)]


def _candidate(stage: Stage = Stage.CANARY, fraction: float = 0.2, **changes: object) -> CandidateRecord:
    record = CandidateRecord(
        id=1,
        service_id="svc",
        kind=CandidateKind.POLICY,
        spec="surface-all",
        model_version=None,
        stage=stage,
        fraction=fraction,
        bucket_by=BucketBy.PATIENT,
        salt="salt-a",
        created_by="staff:x",
        created_at=T0,
        changed_at=T0,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def _served(candidate: CandidateRecord, keys: list[str]) -> set[str]:
    return {k for k in keys if assign(candidate, patient_key=k, unit_id=None).served}


def test_a_key_always_lands_in_the_same_bucket() -> None:
    assert [bucket("salt-a", k) for k in KEYS[:500]] == [bucket("salt-a", k) for k in KEYS[:500]]
    assert all(0.0 <= bucket("salt-a", k) < 1.0 for k in KEYS[:500])


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_a_canary_serves_its_fraction_of_many_patients(fraction: float) -> None:
    share = len(_served(_candidate(fraction=fraction), KEYS)) / len(KEYS)
    # Binomial standard deviation at n = 20,000 is at most 0.0036: five of them either side.
    assert share == pytest.approx(fraction, abs=0.018)


def test_widening_the_canary_keeps_every_patient_it_already_served() -> None:
    narrow = _served(_candidate(fraction=0.1), KEYS)
    wide = _served(_candidate(fraction=0.3), KEYS)
    assert narrow < wide


def test_two_candidates_with_their_own_salts_pick_different_patients() -> None:
    first = _served(_candidate(salt=new_salt()), KEYS)
    second = _served(_candidate(salt=new_salt()), KEYS)
    overlap = len(first & second) / len(KEYS)
    # Independent draws overlap by about fraction² (0.04), far from the 0.2 of the same salt.
    assert overlap == pytest.approx(0.04, abs=0.015)


def test_unit_bucketing_puts_every_patient_of_a_unit_on_the_same_side() -> None:
    candidate = _candidate(bucket_by=BucketBy.UNIT, fraction=0.5)
    units = [f"unit-{i}" for i in range(40)]
    for unit in units:
        sides = {assign(candidate, patient_key=k, unit_id=unit).served for k in KEYS[:50]}
        assert len(sides) == 1
    served_units = [u for u in units if assign(candidate, patient_key=None, unit_id=u).served]
    assert 0 < len(served_units) < len(units)


def test_the_bucket_that_decided_is_recorded_with_the_assignment() -> None:
    candidate = _candidate()
    found = assign(candidate, patient_key="patient-7", unit_id=None)
    assert found.bucket == bucket(candidate.salt, "patient-7")
    assert found.served == (found.bucket < candidate.fraction)


def test_a_call_with_no_key_to_bucket_on_stays_live() -> None:
    assert not assign(_candidate(fraction=1.0), patient_key=None, unit_id="unit-1").served
    assert not assign(_candidate(fraction=1.0, bucket_by=BucketBy.UNIT), patient_key="p", unit_id=None).served


@pytest.mark.parametrize(("stage", "served"), [(Stage.LIVE, True), (Stage.SHADOW, False), (Stage.OFF, False)])
def test_only_canary_and_live_candidates_serve(stage: Stage, served: bool) -> None:
    candidate = _candidate(stage=stage, fraction=1.0)
    assert {assign(candidate, patient_key=k, unit_id=None).served for k in KEYS[:200]} == {served}


@pytest.mark.parametrize(
    ("current", "target", "reason"),
    [
        (Stage.SHADOW, Stage.LIVE, RefusalReason.NOT_ADJACENT),
        (Stage.OFF, Stage.CANARY, RefusalReason.NOT_ADJACENT),
        (Stage.CANARY, Stage.CANARY, RefusalReason.SAME_STAGE),
    ],
)
def test_stages_move_one_step_at_a_time(current: Stage, target: Stage, reason: RefusalReason) -> None:
    with pytest.raises(StageChangeRefused) as refused:
        check_transition(current, target, others_serving=0, fraction=0.1)
    assert refused.value.reason is reason


def test_a_second_candidate_cannot_serve_the_same_service() -> None:
    with pytest.raises(StageChangeRefused) as refused:
        check_transition(Stage.SHADOW, Stage.CANARY, others_serving=1, fraction=0.1)
    assert refused.value.reason is RefusalReason.ANOTHER_SERVES
    check_transition(Stage.CANARY, Stage.SHADOW, others_serving=1, fraction=0.1)  # stepping back is always fine
