"""Rendering: surfaced decisions become CDS Hooks 2.0 cards, with the service's source, links and override reasons."""

from __future__ import annotations

import uuid
from typing import Any

from api.catalog import ServiceDefinition
from policy.port import Action, Decision, Suggestion


def render_card(decision: Decision, *, service: ServiceDefinition, scorer_id: str) -> dict[str, Any] | None:
    """One card for a surfaced or escalated decision; None for anything a clinician must not see."""
    if decision.action not in (Action.SURFACE, Action.ESCALATE) or decision.card is None:
        return None
    content = decision.card
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": content.summary,
        "indicator": content.indicator.value,
        "detail": content.detail,
        "source": service.card.source(scorer_id),
    }
    if content.suggestions:
        card["suggestions"] = [_suggestion(s) for s in content.suggestions]
        card["selectionBehavior"] = "at-most-one"
    if service.card.override_reasons:
        card["overrideReasons"] = [r.model_dump(exclude_none=True) for r in service.card.override_reasons]
    if service.card.links:
        card["links"] = [link.model_dump(by_alias=True, exclude_none=True) for link in service.card.links]
    return card


def _suggestion(suggestion: Suggestion) -> dict[str, Any]:
    actions = []
    for action in suggestion.actions:
        body: dict[str, Any] = {"type": action.type.value, "description": action.description}
        if action.resource is not None:
            body["resource"] = action.resource
        if action.resource_id is not None:
            body["resourceId"] = action.resource_id
        actions.append(body)
    rendered: dict[str, Any] = {"label": suggestion.label, "uuid": str(uuid.uuid4())}
    if suggestion.is_recommended:
        rendered["isRecommended"] = True
    if actions:
        rendered["actions"] = actions
    return rendered
