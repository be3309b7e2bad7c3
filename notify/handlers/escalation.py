"""An escalation rung coming due: notify its role through the step's channel, unless the alert was answered since.

Runs in the timer's transaction (notify.timer_runner), which also marks the timer fired: the outbox message, the
`EscalationStepReached` event and the audit record of the outcome are written once or not at all. The patient's
policy state is read under the same per-patient lock a hook call takes, so an acknowledgement and a rung coming due
are decided one after the other, never both on a stale view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notify.channels.fhir import communication_message
from notify.handlers.outcomes import TimerAuditKind, TimerOutcome, audit_outcome
from notify.handlers.session import policy_ledger
from notify.live_timers import StepDue
from notify.port import ChannelName, Clock, NotifyUnitOfWork, OutboundMessage, Timer, system_clock
from notify.settings import ChannelRoute
from policy.events import EscalationStepReached
from policy.state import PolicyState

# FHIR request priority of a Communication sent by an escalation rung.
_PRIORITY = "urgent"


def standing_down(due: StepDue, state: PolicyState) -> TimerOutcome | None:
    """Why the rung must not notify anyone (None: it must). Pure, on the policy state as of now."""
    escalation = state.escalation(due.patient, due.alert_key)
    if escalation is None or escalation.started.at != due.started_at:
        return TimerOutcome.SUPERSEDED
    if escalation.acknowledged_at is not None:
        dismissal = state.last_dismissal(due.patient, due.alert_key)
        dismissed = dismissal is not None and dismissal.at == escalation.acknowledged_at
        return TimerOutcome.DISMISSED if dismissed else TimerOutcome.ACKNOWLEDGED
    seen = state.last_seen(due.patient, due.alert_key)
    if seen is not None and seen.at > due.started_at and seen.band != due.band:
        return TimerOutcome.RESOLVED
    return None


class EscalationStepHandler:
    """The `escalation-step` timer handler; `routes` maps a step's channel name to an outbox channel and target."""

    def __init__(self, routes: Mapping[str, ChannelRoute], *, clock: Clock = system_clock) -> None:
        self._routes = routes
        self._clock = clock

    def fire(self, timer: Timer, uow: NotifyUnitOfWork) -> None:
        due = StepDue.from_payload(timer.payload)
        now = self._clock()
        ledger = policy_ledger(uow, due.patient)
        outcome = standing_down(due, ledger.state)
        if outcome is None:
            escalation = ledger.state.escalation(due.patient, due.alert_key)
            # A hook call may have recorded the rung already (a duplicate call after it came due); nobody was told.
            if escalation is not None and escalation.reached <= due.index:
                ledger.record([EscalationStepReached(due.patient, due.alert_key, due.index, due.step, now)])
            outcome = self._notify(timer, due, uow)
        audit_outcome(uow, TimerAuditKind.ESCALATION_STEP, timer, outcome, now, _details(due))

    def _notify(self, timer: Timer, due: StepDue, uow: NotifyUnitOfWork) -> TimerOutcome:
        route = self._routes.get(due.step.channel)
        if route is None:
            return TimerOutcome.NO_ROUTE
        if route.channel == ChannelName.WEBHOOK:
            message = OutboundMessage(ChannelName.WEBHOOK, route.target, _webhook_body(due), timer.key)
        else:
            patient_id = timer.payload.get("patient_id")
            if not patient_id:
                return TimerOutcome.NO_PATIENT_REFERENCE
            message = communication_message(
                target=route.target,
                idempotency_key=timer.key,
                patient_id=str(patient_id),
                recipient_role=due.step.role,
                text=f"Escalation: {due.alert_key} {due.band}, unacknowledged for {due.step.after_minutes} min",
                encounter_id=due.encounter_id,
                priority=_PRIORITY,
            )
        # The timer key is the idempotency key: the rung is enqueued once, and receivers can de-duplicate on it.
        uow.outbox.enqueue(message)
        return TimerOutcome.NOTIFIED


def _webhook_body(due: StepDue) -> dict[str, Any]:
    # The pseudonymous patient key and the encounter id: enough for the receiver to find the patient, no PHI.
    return {
        "event": "escalation-step",
        "patient": due.patient,
        "encounter_id": due.encounter_id,
        "alert_key": due.alert_key,
        "band": due.band,
        "step": due.index,
        "role": due.step.role,
        "channel": due.step.channel,
        "started_at": due.started_at.isoformat(),
        "due_at": due.due_at.isoformat(),
    }


def _details(due: StepDue) -> dict[str, Any]:
    return {"alert_key": due.alert_key, "step": due.index, "role": due.step.role, "channel": due.step.channel}
