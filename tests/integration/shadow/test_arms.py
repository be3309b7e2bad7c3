"""Candidate arms on the bundled sepsis model: a threshold candidate re-bands the same scores, a model candidate
rescores the same context, and a policy candidate is the bundled document run by the same engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cdsctl.bootstrap import load_bundled_policies
from clinical.model import ClinicalContext
from policy.engine import RoutedPolicy
from scoring.model.registry import ModelRegistry
from scoring.port import RiskOutput
from shadow.arms import ArmFactory, CandidateInvalidError
from shadow.stages import BucketBy, CandidateKind, CandidateRecord, Stage

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SCORERS = ("sepsis-hgb", "qsofa", "sirs")


@pytest.fixture(scope="module")
def arms() -> ArmFactory:
    return ArmFactory({p.policy_id: p for p in load_bundled_policies()})


def _record(spec: str, model_version: str | None = None) -> CandidateRecord:
    return CandidateRecord(
        id=1,  # the arm cache keys on the spec and version too
        service_id="sepsis-risk",
        kind=CandidateKind.POLICY,
        spec=spec,
        model_version=model_version,
        stage=Stage.SHADOW,
        fraction=0.1,
        bucket_by=BucketBy.PATIENT,
        salt="s",
        created_by="staff:x",
        created_at=NOW,
        changed_at=NOW,
    )


def _output(scorer: str, score: float | None, band: str) -> RiskOutput:
    return RiskOutput(scorer_id=scorer, scorer_version="1", score=score, band=band, as_of=NOW, input_hash="0" * 64)


def test_a_lower_threshold_moves_the_same_scores_into_the_alerting_band(arms: ArmFactory) -> None:
    card = ModelRegistry().load("sepsis-hgb").card
    # A score a fifth below the live threshold, and a candidate threshold a little below that score.
    score = round(card.threshold * 0.8, 4)
    assert card.band_of(score) == "moderate"  # its live band
    live = (
        _output("sepsis-hgb", score, "moderate"),
        _output("sepsis-hgb", None, "unknown"),
        _output("qsofa", 2, "high"),
    )
    arm = arms.arm(_record(f"deterioration@{score * 0.9:.4f}"), SCORERS)
    assert [(o.score, o.band) for o in arm.outputs(live, ClinicalContext(patient=None), NOW)] == [
        (score, "high"),
        (None, "unknown"),  # no score, nothing to re-band
        (2, "high"),  # the rule scorers are left alone
    ]


def test_a_model_candidate_rescores_the_context_with_its_version(arms: ArmFactory) -> None:
    arm = arms.arm(_record("deterioration", "1.1.0"), SCORERS)
    live = (_output("sepsis-hgb", 0.5, "high"), _output("qsofa", 1, "low"))
    rescored = arm.outputs(live, ClinicalContext(patient=None), NOW)
    # Without an encounter the model has no admission time: the candidate's own output says so, in place.
    assert [(o.scorer_id, o.scorer_version, o.score) for o in rescored] == [
        ("sepsis-hgb", "1.1.0", None),
        ("qsofa", "1", 1),
    ]


def test_kinds_are_told_apart_and_policy_candidates_run_the_bundled_document(arms: ArmFactory) -> None:
    def kind(spec: str, version: str | None = None) -> CandidateKind:
        return arms.kind_of(spec, version, scorers=SCORERS, live_policy="deterioration")

    assert kind("deterioration@0.05") is CandidateKind.THRESHOLD
    assert kind("deterioration", "1.1.0") is CandidateKind.MODEL
    assert kind("surface-all@0.05") is CandidateKind.POLICY
    policy = arms.arm(_record("surface-all"), SCORERS).policy
    assert isinstance(policy, RoutedPolicy) and policy.policy_id == "surface-all"
    with pytest.raises(CandidateInvalidError):
        kind("deterioration@high")
    with pytest.raises(CandidateInvalidError):
        arms.kind_of("deterioration@0.05", None, scorers=("news2",), live_policy="deterioration")
