"""Rendering: surfaced decisions become CDS Hooks 2.0 cards."""

from __future__ import annotations

import uuid
from typing import Any

from policy.port import Action, Decision

SOURCE_LABEL = "cds-control-plane"


def render_card(decision: Decision, *, service_id: str, scorer_id: str) -> dict[str, Any] | None:
    """One card for a surfaced or escalated decision; None for anything a clinician must not see."""
    if decision.action not in (Action.SURFACE, Action.ESCALATE) or decision.card is None:
        return None
    content = decision.card
    return {
        "uuid": str(uuid.uuid4()),
        "summary": content.summary,
        "indicator": content.indicator.value,
        "detail": content.detail,
        "source": {
            "label": SOURCE_LABEL,
            "topic": {
                "system": "urn:cds-control-plane:scorer",
                "code": scorer_id,
                "display": f"{scorer_id} via {service_id}",
            },
        },
    }
