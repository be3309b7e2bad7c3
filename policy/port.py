"""The policy port: one decision per risk output, with its reasons and the policy version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from clinical.model import ClinicalContext
from scoring.port import RiskOutput


class Action(StrEnum):
    SURFACE = "surface"
    SUPPRESS = "suppress"
    DELAY = "delay"
    ESCALATE = "escalate"


class Reason(StrEnum):
    """Why a decision was taken. Each decision carries at least one."""

    ROUTE_MATCHED = "route-matched"
    PASS_THROUGH = "pass-through"  # noqa: S105 -- a reason code, not a secret
    BELOW_THRESHOLD = "below-threshold"
    COMFORT_CARE = "comfort-care"
    ALREADY_TREATED = "already-treated"
    DUPLICATE = "duplicate"
    LOCKED_OUT = "locked-out"
    SILENCED = "silenced"
    INHIBITED = "inhibited"
    BUDGET_DOWNGRADE = "budget-downgrade"
    AWAITING_CONFIRMATION = "awaiting-confirmation"
    WORSENED = "worsened"
    PARTIAL_INPUTS = "partial-inputs"
    NO_DATA = "no-data"
    # Added with the routed policy engine (policy/engine.py).
    ESCALATED = "escalated"
    SNOOZED = "snoozed"
    SNOOZE_EXPIRED = "snooze-expired"
    DELAYED = "delayed"
    DELAY_RELEASED = "delay-released"
    CONFIRMED = "confirmed"
    DELAY_CANCELLED = "delay-cancelled"
    CONTEXT_CHANGED = "context-changed"
    RESOLVED = "resolved"
    TIME_WINDOW = "time-window"


class Indicator(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ActionType(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class SuggestedAction:
    """A change to the EHR's record the clinician can accept with one click (a FHIR resource, JSON-ready)."""

    type: ActionType
    description: str
    resource: dict[str, object] | None = None
    # For delete: the relative reference (e.g. "ServiceRequest/123") of the resource to remove.
    resource_id: str | None = None


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    actions: tuple[SuggestedAction, ...] = ()
    is_recommended: bool = False


@dataclass(frozen=True, slots=True)
class CardContent:
    summary: str
    indicator: Indicator
    detail: str
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One rung of an escalation ladder: notify `role` through `channel` once `after_minutes` pass unacknowledged."""

    role: str
    channel: str
    after_minutes: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reasons: tuple[Reason, ...]
    policy_id: str
    policy_version: str
    route: str
    inputs_hash: str
    decided_at: datetime
    card: CardContent | None = None
    delay_until: datetime | None = None
    # The ladder an escalate decision starts (empty for every other action).
    escalation: tuple[EscalationStep, ...] = ()


class Policy(Protocol):
    @property
    def policy_id(self) -> str: ...

    @property
    def version(self) -> str: ...

    def decide(self, output: RiskOutput, context: ClinicalContext, now: datetime) -> Decision: ...
