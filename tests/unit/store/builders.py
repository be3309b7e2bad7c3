"""Small builders of hook calls and feedback for the store's unit and integration tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from clinical.model import Provenance
from policy.port import Action, Decision, Reason
from scoring.port import Contribution, FeatureValue, RiskOutput
from store.port import Feedback, FeedbackOutcome, HookCall, ScoredDecision

T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def risk_output(scorer_id: str = "news2", score: float | None = 7.0, band: str = "high") -> RiskOutput:
    return RiskOutput(
        scorer_id=scorer_id,
        scorer_version="1.0.0",
        score=score,
        band=band,
        as_of=T0,
        input_hash="a" * 64,
        explanation=(Contribution(feature="respiratory_rate", points=3.0, detail="rate 26/min scores 3"),),
        features={
            "respiratory_rate": FeatureValue(
                name="respiratory_rate",
                value=26.0,
                unit="/min",
                observed_utc=T0 - timedelta(minutes=20),
                provenance=Provenance(resource_type="Observation", resource_id="obs-1", version_id="2"),
            ),
            "spo2": FeatureValue(name="spo2", value=None),
        },
        partial=score is None,
        missing=("spo2",) if score is None else (),
    )


def decision(action: Action = Action.SURFACE, reasons: tuple[Reason, ...] = (Reason.ROUTE_MATCHED,)) -> Decision:
    return Decision(
        action=action,
        reasons=reasons,
        policy_id="deterioration",
        policy_version="3",
        route="ward-high",
        inputs_hash="b" * 64,
        decided_at=T0,
        delay_until=T0 + timedelta(minutes=30) if action is Action.DELAY else None,
    )


def card(uuid: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "summary": "NEWS2 7: urgent review",
        "indicator": "critical",
        "source": {"label": "Deterioration service"},
        "suggestions": [{"label": "Request review", "uuid": f"{uuid}-s1"}],
    }


def hook_call(hook_instance: str = "hook-1", card_uuid: str = "card-1", at: datetime = T0) -> HookCall:
    """A call that surfaced one card (NEWS2) and suppressed one (a partial qSOFA)."""
    surfaced = card(card_uuid)
    return HookCall(
        hook_instance=hook_instance,
        service_id="deterioration",
        hook="patient-view",
        actor="client:ehr-test",
        received_at=at,
        response={"cards": [surfaced]},
        results=(
            ScoredDecision(output=risk_output(), decision=decision(), card=surfaced),
            ScoredDecision(
                output=risk_output("qsofa", score=None, band="unknown"),
                decision=decision(Action.SUPPRESS, (Reason.PARTIAL_INPUTS,)),
            ),
        ),
        patient_key="pk-3f9a",
        encounter_id="enc-1",
    )


def feedback(card_uuid: str = "card-1", outcome_at: datetime = T0 + timedelta(minutes=5)) -> Feedback:
    return Feedback(
        card_uuid=card_uuid,
        outcome=FeedbackOutcome.OVERRIDDEN,
        outcome_at=outcome_at,
        received_at=outcome_at + timedelta(seconds=2),
        actor="client:ehr-test",
        override_reason={"reason": {"code": "already-treated"}, "userComment": "seen by outreach team"},
        user_pseudonym="user-77",
    )
