"""What a live-path timer came to, as values: every firing leaves one audit record saying what it did and why."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from notify.port import NotifyUnitOfWork, Timer
from store.port import AuditEntry

TIMER_ACTOR = "notify-worker"


class TimerAuditKind(StrEnum):
    ESCALATION_STEP = "escalation-step"
    DELAY_DUE = "delay-due"


class TimerOutcome(StrEnum):
    """Why a timer notified someone, or why it stood down."""

    NOTIFIED = "notified"
    # The step's channel (or `delay-due`) has no route in CDS_NOTIFY: the rung is reached, nobody is told.
    NO_ROUTE = "no-route"
    # A FHIR route needs the EHR's patient id, which the store does not keep (only the pseudonymous key).
    NO_PATIENT_REFERENCE = "no-patient-reference"
    ACKNOWLEDGED = "acknowledged"
    DISMISSED = "dismissed"
    # The alert was seen again in another band since the ladder started: it no longer fires.
    RESOLVED = "resolved"
    # A newer ladder or hold replaced the one this timer was armed for; that one has timers of its own.
    SUPERSEDED = "superseded"
    # The hold had already ended at a hook call (released by a confirming observation, or cancelled).
    NOT_PENDING = "not-pending"


def audit_outcome(
    uow: NotifyUnitOfWork,
    kind: TimerAuditKind,
    timer: Timer,
    outcome: TimerOutcome,
    at: datetime,
    details: Mapping[str, Any],
) -> None:
    """Append the outcome in the timer's transaction: it is recorded exactly when the timer fires."""
    uow.repo.append_audit(
        AuditEntry(
            actor=TIMER_ACTOR,
            kind=kind,
            subject=f"timer:{timer.id}",
            at=at,
            payload={"outcome": outcome.value, "timer": timer.key, **details},
        )
    )
