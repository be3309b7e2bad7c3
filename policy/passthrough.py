"""The pass-through policy: surfaces every risk output as a card, its indicator taken from the band."""

from __future__ import annotations

from datetime import datetime

from clinical.model import ClinicalContext
from policy.port import Action, CardContent, Decision, Indicator, Reason
from scoring.port import RiskOutput

# Bands scorers emit, mapped to the card indicator the pass-through policy uses.
_BAND_INDICATOR: dict[str, Indicator] = {
    "low": Indicator.INFO,
    "low-medium": Indicator.WARNING,
    "medium": Indicator.WARNING,
    "high": Indicator.CRITICAL,
    "negative": Indicator.INFO,
    "positive": Indicator.WARNING,
}


class PassThroughPolicy:
    """No suppression, no delay: the walking skeleton's policy, and the baseline shadow mode compares against."""

    policy_id = "pass-through"
    version = "1"

    def decide(self, output: RiskOutput, context: ClinicalContext, now: datetime) -> Decision:
        if output.score is None:
            return Decision(
                action=Action.SUPPRESS,
                reasons=(Reason.NO_DATA,),
                policy_id=self.policy_id,
                policy_version=self.version,
                route="root",
                inputs_hash=output.input_hash,
                decided_at=now,
            )
        indicator = _BAND_INDICATOR.get(output.band, Indicator.INFO)
        score = f"{output.score:g}"
        partial = " (partial: missing " + ", ".join(output.missing) + ")" if output.partial else ""
        summary = f"{output.scorer_id.upper()} {score}: {output.band} risk{partial}"
        lines = [f"- **{c.feature}**: {c.detail} ({c.points:+g})" for c in output.explanation]
        detail = "\n".join([f"Score {score}, band **{output.band}**{partial}.", "", *lines])
        reasons = (Reason.PASS_THROUGH, Reason.PARTIAL_INPUTS) if output.partial else (Reason.PASS_THROUGH,)
        return Decision(
            action=Action.SURFACE,
            reasons=reasons,
            policy_id=self.policy_id,
            policy_version=self.version,
            route="root",
            inputs_hash=output.input_hash,
            decided_at=now,
            card=CardContent(summary=summary[:139], indicator=indicator, detail=detail),
        )
