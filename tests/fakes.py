"""Fake scorers and policies for tests: plain objects that honour the ports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from clinical.model import ClinicalContext
from policy.port import Action, CardContent, Decision, Indicator, Reason, Suggestion
from scoring.port import RiskOutput


@dataclass
class FakeScorer:
    """Always gives the same band and score; can be made slow or broken."""

    scorer_id: str
    band: str = "high"
    score_value: float = 7.0
    version: str = "test-1"
    delay_s: float = 0.0
    error: Exception | None = None
    calls: int = field(default=0, init=False)

    def score(self, context: ClinicalContext, as_of: datetime) -> list[RiskOutput]:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return [
            RiskOutput(
                scorer_id=self.scorer_id,
                scorer_version=self.version,
                score=self.score_value,
                band=self.band,
                as_of=as_of,
                input_hash="0" * 64,
            )
        ]


@dataclass
class ScriptedPolicy:
    """Decides one fixed way for every output: the action, indicator and suggestions are given."""

    policy_id: str
    action: Action = Action.SURFACE
    indicator: Indicator = Indicator.WARNING
    suggestions: tuple[Suggestion, ...] = ()
    version: str = "test-1"

    def decide(self, output: RiskOutput, context: ClinicalContext, now: datetime) -> Decision:
        shown = self.action in (Action.SURFACE, Action.ESCALATE)
        return Decision(
            action=self.action,
            reasons=(Reason.ROUTE_MATCHED,),
            policy_id=self.policy_id,
            policy_version=self.version,
            route="test",
            inputs_hash=output.input_hash,
            decided_at=now,
            card=CardContent(
                summary=f"{output.scorer_id} {output.band}",
                indicator=self.indicator,
                detail="Test card.",
                suggestions=self.suggestions,
            )
            if shown
            else None,
        )
