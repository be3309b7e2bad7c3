"""What a candidate decided on a live call, as recorded beside what the call served; and the ports that read
candidates and write those records (store/candidates.py implements both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from policy.port import Action, Decision, Reason
from scoring.port import RiskOutput
from shadow.canary import Assignment
from shadow.stages import CandidateRecord, Stage


class CandidateSource(Protocol):
    def evaluated(self, service_id: str) -> list[CandidateRecord]: ...


@dataclass(frozen=True, slots=True)
class ShadowDecision:
    """One candidate decision on one risk output of a live call, with the decision the call served beside it."""

    candidate_id: int
    hook_instance: str
    service_id: str
    stage: Stage
    served: bool
    bucket: float | None
    scorer_id: str
    band: str
    score: float | None
    action: Action
    reasons: tuple[Reason, ...]
    route: str
    policy_id: str
    policy_version: str
    live_action: Action | None
    live_reasons: tuple[Reason, ...] | None
    live_route: str | None
    decided_at: datetime


class ShadowSink(Protocol):
    def record_shadow(self, decisions: Sequence[ShadowDecision]) -> None: ...


def decision_rows(
    record: CandidateRecord,
    assignment: Assignment,
    serves: bool,
    outputs: Sequence[RiskOutput],
    decisions: Sequence[Decision],
    *,
    served: Sequence[Decision],
    hook_instance: str,
    service_id: str,
) -> list[ShadowDecision]:
    """One row per output: the candidate's decision, paired by position with the one the call served."""
    live: Sequence[Decision | None] = served if len(served) == len(decisions) else (None,) * len(decisions)
    return [
        ShadowDecision(
            candidate_id=record.id,
            hook_instance=hook_instance,
            service_id=service_id,
            stage=record.stage,
            served=serves,
            bucket=assignment.bucket,
            scorer_id=output.scorer_id,
            band=output.band,
            score=output.score,
            action=decision.action,
            reasons=decision.reasons,
            route=decision.route,
            policy_id=decision.policy_id,
            policy_version=decision.policy_version,
            live_action=paired.action if paired is not None else None,
            live_reasons=paired.reasons if paired is not None else None,
            live_route=paired.route if paired is not None else None,
            decided_at=decision.decided_at,
        )
        for output, decision, paired in zip(outputs, decisions, live, strict=True)
    ]
