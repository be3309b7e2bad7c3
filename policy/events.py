"""Policy state events, in the past tense: what the engine decided and what clinicians did, never a mutation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policy.document import Match
from policy.port import EscalationStep, Indicator, Reason

# Every event names the patient (pseudonymous key) and the alert key (by default the scorer id) it is about,
# except the silence events, which are about the unit or the whole service.


@dataclass(frozen=True, slots=True)
class OutputEvaluated:
    """A risk output was decided on: the band it had, for the band trend of the next decision."""

    patient: str
    alert_key: str
    band: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertSurfaced:
    patient: str
    alert_key: str
    scorer: str
    band: str
    indicator: Indicator
    route: str
    at: datetime
    # Until when the alert counts as firing for de-duplication and as an inhibition source.
    active_until: datetime
    unit_id: str | None = None
    encounter_id: str | None = None

    @property
    def interruptive(self) -> bool:
        return self.indicator is not Indicator.INFO


@dataclass(frozen=True, slots=True)
class AlertSuppressed:
    patient: str
    alert_key: str
    band: str
    reasons: tuple[Reason, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertDelayed:
    patient: str
    alert_key: str
    band: str
    route: str
    at: datetime
    until: datetime
    reason: Reason
    # Released as soon as an observation of this kind newer than `at` arrives.
    confirm_kind: str | None = None


@dataclass(frozen=True, slots=True)
class DelayReleased:
    patient: str
    alert_key: str
    reason: Reason
    at: datetime


@dataclass(frozen=True, slots=True)
class DelayCancelled:
    patient: str
    alert_key: str
    reason: Reason
    at: datetime


@dataclass(frozen=True, slots=True)
class EscalationStarted:
    patient: str
    alert_key: str
    band: str
    steps: tuple[EscalationStep, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class EscalationStepReached:
    """A rung of the ladder came due unacknowledged: notify `step.role` through `step.channel`."""

    patient: str
    alert_key: str
    index: int
    step: EscalationStep
    at: datetime


# Events from outside the engine: clinicians' feedback and informaticists' silences.


@dataclass(frozen=True, slots=True)
class AlertDismissed:
    patient: str
    alert_key: str
    band: str
    indicator: Indicator
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertSnoozed:
    patient: str
    alert_key: str
    until: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertAcknowledged:
    patient: str
    alert_key: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Silence:
    """A time-bounded mute: outputs matching `match` (and `patient` / `unit_id` when set) are suppressed."""

    silence_id: str
    match: Match
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str
    created_at: datetime
    patient: str | None = None
    unit_id: str | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True, slots=True)
class SilenceCreated:
    silence: Silence
    at: datetime


@dataclass(frozen=True, slots=True)
class SilenceExpired:
    silence_id: str
    at: datetime


PolicyEvent = (
    OutputEvaluated
    | AlertSurfaced
    | AlertSuppressed
    | AlertDelayed
    | DelayReleased
    | DelayCancelled
    | EscalationStarted
    | EscalationStepReached
    | AlertDismissed
    | AlertSnoozed
    | AlertAcknowledged
    | SilenceCreated
    | SilenceExpired
)
