"""The durable timers the live path arms from policy events: one per escalation rung still to come, one per hold.

`arm_timers` runs in the transaction that appends the events (store.policy_state.record_events), so a ladder or a
hold is never stored without its timers, nor the reverse. Keys are derived from the events, so re-arming the same
ladder or hold (a retried request, a replayed batch) creates nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from policy.events import AlertDelayed, AlertSurfaced, EscalationStarted, PolicyEvent
from policy.port import EscalationStep
from store import timers as timer_store

# Where the hook call's unit of work leaves the EHR's own Patient id for the timers it arms (session.info): a FHIR
# Communication about the patient must name them in the EHR's terms, and the store otherwise keeps only the
# pseudonymous key. It travels in the timer's payload (the database), never into a log or an audit record.
FHIR_PATIENT_ID = "cds.fhir_patient_id"


class LiveTimerKind(StrEnum):
    ESCALATION_STEP = "escalation-step"
    DELAY_DUE = "delay-due"


@dataclass(frozen=True, slots=True)
class StepDue:
    """An escalation rung's timer: ladder `started_at` for `patient`'s `alert_key`, rung `index`."""

    patient: str
    alert_key: str
    band: str
    started_at: datetime
    index: int
    step: EscalationStep
    encounter_id: str | None = None
    patient_id: str | None = None

    @property
    def key(self) -> str:
        return f"escalation:{self.patient}:{self.alert_key}:{self.started_at.isoformat()}:{self.index}"

    @property
    def due_at(self) -> datetime:
        return self.started_at + timedelta(minutes=self.step.after_minutes)

    def payload(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "alert_key": self.alert_key,
            "band": self.band,
            "started_at": self.started_at.isoformat(),
            "index": self.index,
            "step": {"role": self.step.role, "channel": self.step.channel, "after_minutes": self.step.after_minutes},
            "encounter_id": self.encounter_id,
            "patient_id": self.patient_id,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StepDue:
        return cls(
            patient=payload["patient"],
            alert_key=payload["alert_key"],
            band=payload["band"],
            started_at=datetime.fromisoformat(payload["started_at"]),
            index=int(payload["index"]),
            step=EscalationStep(**payload["step"]),
            encounter_id=payload.get("encounter_id"),
            patient_id=payload.get("patient_id"),
        )


@dataclass(frozen=True, slots=True)
class HoldDue:
    """A hold's timer: `patient`'s `alert_key` held at `held_at` until `until`."""

    patient: str
    alert_key: str
    band: str
    held_at: datetime
    until: datetime
    reason: str

    @property
    def key(self) -> str:
        return f"delay:{self.patient}:{self.alert_key}:{self.held_at.isoformat()}"

    def payload(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "alert_key": self.alert_key,
            "band": self.band,
            "held_at": self.held_at.isoformat(),
            "until": self.until.isoformat(),
            "reason": self.reason,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> HoldDue:
        return cls(
            patient=payload["patient"],
            alert_key=payload["alert_key"],
            band=payload["band"],
            held_at=datetime.fromisoformat(payload["held_at"]),
            until=datetime.fromisoformat(payload["until"]),
            reason=payload["reason"],
        )


def timers_for(events: Iterable[PolicyEvent], *, patient_id: str | None = None) -> list[StepDue | HoldDue]:
    """The timers a batch of events implies. The first rung is not among them: it is reached when the ladder
    starts, and the card the hook call answers with is its notification (policy.state.Escalation.reached).
    `patient_id` is the EHR's Patient id of the hook call the events came from, when there was one."""
    events = list(events)
    encounters = {(e.patient, e.alert_key, e.at): e.encounter_id for e in events if isinstance(e, AlertSurfaced)}
    out: list[StepDue | HoldDue] = []
    for event in events:
        if isinstance(event, EscalationStarted):
            encounter = encounters.get((event.patient, event.alert_key, event.at))
            out.extend(
                StepDue(event.patient, event.alert_key, event.band, event.at, index, step, encounter, patient_id)
                for index, step in enumerate(event.steps)
                if index >= 1
            )
        elif isinstance(event, AlertDelayed):
            out.append(HoldDue(event.patient, event.alert_key, event.band, event.at, event.until, event.reason))
    return out


def arm_timers(session: Session, events: Iterable[PolicyEvent]) -> int:
    """Schedule the events' timers in the caller's transaction; returns how many were new."""
    armed = 0
    patient_id = session.info.get(FHIR_PATIENT_ID)
    for due in timers_for(events, patient_id=patient_id if isinstance(patient_id, str) else None):
        if isinstance(due, StepDue):
            kind, due_at, created = LiveTimerKind.ESCALATION_STEP, due.due_at, due.started_at
        else:
            kind, due_at, created = LiveTimerKind.DELAY_DUE, due.until, due.held_at
        armed += timer_store.schedule(session, kind, due.key, due_at, due.payload(), now=created)
    return armed
