"""JSON-ready documents for the parts of domain objects that are stored as JSON, and the hook-call audit payload."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scoring.port import Contribution, FeatureValue, RiskOutput
from store.port import Feedback, HookCall


def instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


# Values plain_json hands back as they are, tested by exact type first: the cards and events it walks are mostly
# such leaves, and an isinstance test against Mapping per leaf cost more than the copy itself.
LEAVES = frozenset({str, int, float, bool, type(None)})


def plain_json(value: Any) -> Any:
    """Mappings and tuples turned into the dicts and lists a JSON column serialises."""
    if type(value) in LEAVES:
        return value
    if type(value) is dict or isinstance(value, Mapping):
        return {
            key if type(key) is str else str(key): item if type(item) in LEAVES else plain_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [item if type(item) in LEAVES else plain_json(item) for item in value]
    return value


def explanation_document(output: RiskOutput) -> list[Contribution]:
    """The explanation as stored: one {"feature", "points", "detail"} object a line. The contributions themselves, which
    the document codec (orjson, store.columns) writes field by field, in order, as it writes any dataclass."""
    return list(output.explanation)


def features_document(output: RiskOutput) -> dict[str, FeatureValue]:
    """The inputs as stored, by name: {"name", "value", "unit", "observed_utc", "provenance": {"resource_type",
    "resource_id", "version_id", "source_system"} or null}. The feature values themselves, written by the codec field by
    field: a dict made per feature and per provenance cost a hook call more than the rest of its documents together,
    and the times come out as isoformat writes them (`observed_utc` is an instant in UTC)."""
    features = output.features
    return features if type(features) is dict else dict(features)


def card_uuid(card: Mapping[str, Any]) -> str:
    uuid = card.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        # Feedback refers to cards by uuid; a card without one could never be matched to its outcome.
        raise ValueError("every stored card needs a string 'uuid'")
    return uuid


def hook_call_audit_payload(call: HookCall) -> dict[str, Any]:
    """What the audit log keeps about a hook call: decisions and their provenance, never clinical values."""
    return {
        "hook_instance": call.hook_instance,
        "service_id": call.service_id,
        "hook": call.hook,
        "patient_key": call.patient_key,
        "decisions": [
            {
                "scorer_id": result.output.scorer_id,
                "scorer_version": result.output.scorer_version,
                "band": result.output.band,
                "partial": result.output.partial,
                "input_hash": result.output.input_hash,
                "action": str(result.decision.action),
                "reasons": [str(reason) for reason in result.decision.reasons],
                "policy_id": result.decision.policy_id,
                "policy_version": result.decision.policy_version,
                "route": result.decision.route,
                "card_uuid": None if result.card is None else card_uuid(result.card),
            }
            for result in call.results
        ],
    }


def feedback_audit_payload(feedback: Feedback) -> dict[str, Any]:
    """What the audit log keeps about feedback: the outcome and coded reason, never the free-text comment."""
    reason = (feedback.override_reason or {}).get("reason")
    return {
        "card_uuid": feedback.card_uuid,
        "outcome": str(feedback.outcome),
        "outcome_at": instant(feedback.outcome_at),
        "accepted_suggestions": [s.get("id") for s in feedback.accepted_suggestions],
        "override_reason_code": reason.get("code") if isinstance(reason, Mapping) else None,
        "user_pseudonym": feedback.user_pseudonym,
    }
