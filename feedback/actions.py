"""Clinicians' actions on a card through our own API (acknowledge, dismiss, defer, escalate, already addressed), and
the policy events each one writes; out-of-order actions are kept as history but never undo a newer state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from policy.events import (
    AlertAcknowledged,
    AlertDismissed,
    AlertSnoozed,
    EscalationStarted,
    EscalationStepReached,
    PolicyEvent,
)
from policy.port import EscalationStep, Indicator
from store.port import StoredCard


class ActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISMISS = "dismiss"
    DEFER = "defer"
    ESCALATE = "escalate"
    ALREADY_ADDRESSED = "already-addressed"


class DismissReason(StrEnum):
    """The coded reasons a dismissal must carry (system `DISMISS_REASON_SYSTEM`); free text goes in the comment."""

    NOT_CLINICALLY_RELEVANT = "not-clinically-relevant"
    KNOWN_CONDITION = "known-condition"
    DATA_ERROR = "data-error"
    COMFORT_CARE = "comfort-care"
    TOO_FREQUENT = "too-frequent"
    OTHER = "other"


DISMISS_REASON_SYSTEM = "urn:cds-control-plane:dismiss-reason"
# A manual escalation is one rung, notified at once; its channel names how it was raised, not a delivery route.
MANUAL_CHANNEL = "manual"


class ActionError(ValueError):
    """An action that cannot be accepted as given (a missing `until`, a reason on the wrong action, ...)."""


@dataclass(frozen=True, slots=True)
class ClinicianAction:
    """What one clinician did with one card, at `at` (the clinician's time, which orders actions, not arrival)."""

    card_uuid: str
    action: ActionKind
    at: datetime
    user_pseudonym: str
    user_role: str
    reason: DismissReason | None = None
    # Stored for the team that reviews dismissals; never logged, audited or reported in clear.
    comment: str | None = None
    until: datetime | None = None
    escalate_to: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or (self.until is not None and self.until.tzinfo is None):
            raise ActionError("times must carry a UTC offset")
        if (self.action is ActionKind.DISMISS) != (self.reason is not None):
            raise ActionError("a dismissal needs a coded reason, and only a dismissal has one")
        if (self.action is ActionKind.DEFER) != (self.until is not None):
            raise ActionError("a deferral needs `until`, and only a deferral has one")
        if self.until is not None and self.until <= self.at:
            raise ActionError("a deferral must end after it was made")
        if (self.action is ActionKind.ESCALATE) != bool(self.escalate_to):
            raise ActionError("an escalation needs `escalate_to` (a role), and only an escalation has one")


class ActionStatus(StrEnum):
    APPLIED = "applied"  # recorded, and its policy events written
    SUPERSEDED = "superseded"  # recorded as history; a newer action on the same alert stands
    DUPLICATE = "duplicate"  # the same action (card, kind, time) was recorded before: nothing written
    UNKNOWN_CARD = "unknown-card"  # kept apart, for the report; no policy state changes


@dataclass(frozen=True, slots=True)
class ActionReceipt:
    card_uuid: str
    action: ActionKind
    status: ActionStatus
    events: tuple[str, ...] = ()


def is_superseded(action: ClinicianAction, newest_recorded: datetime | None) -> bool:
    """An action older than the newest action already recorded on the same alert (the same patient and alert key)
    must not overwrite its state: a late "defer" must not re-hide an alert someone acknowledged since."""
    return newest_recorded is not None and action.at < newest_recorded


def policy_events(action: ClinicianAction, card: StoredCard) -> list[PolicyEvent]:
    """The policy events an action writes: a dismissal starts the lockout, a deferral snoozes until `until`, an
    acknowledgement (or "already addressed") stops the escalation ladder, an escalation starts a one-rung ladder."""
    if card.patient_key is None:
        return []
    patient, key = card.patient_key, card.scorer_id
    if action.action is ActionKind.DISMISS:
        indicator = Indicator(card.body.get("indicator", Indicator.INFO.value))
        return [AlertDismissed(patient, key, card.band, indicator, action.at)]
    if action.action is ActionKind.DEFER:
        assert action.until is not None  # checked in __post_init__
        return [AlertSnoozed(patient, key, action.until, action.at)]
    if action.action is ActionKind.ESCALATE:
        assert action.escalate_to is not None
        step = EscalationStep(role=action.escalate_to, channel=MANUAL_CHANNEL)
        return [
            EscalationStarted(patient, key, card.band, (step,), action.at),
            EscalationStepReached(patient, key, 0, step, action.at),
        ]
    return [AlertAcknowledged(patient, key, action.at)]
