"""A hold running out: tell someone the held alert is due; the hold itself is released by the next hook call.

Why the timer does not release the hold: the engine releases a due hold at the patient's next hook call, and that
release is what surfaces the held card (policy.stages._pending_delay skips de-duplication and the route's delay). If
this timer appended `DelayReleased` first, the next hook call would find no pending hold and the route would hold the
alert again, for ever, and the live path would part from replay (which has no timers). So the timer changes no policy
state: when the hold is still pending it enqueues a `delay-due` message (through the `delay-due` route of CDS_NOTIFY,
when one is configured) so that someone opens the chart, whose hook call releases it; when a hook call already ended
the hold (a confirming observation released it, or the context cancelled it), it stands down. Either way the outcome
is audited, in the timer's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notify.handlers.outcomes import TimerAuditKind, TimerOutcome, audit_outcome
from notify.handlers.session import policy_ledger
from notify.live_timers import HoldDue
from notify.port import ChannelName, Clock, NotifyUnitOfWork, OutboundMessage, Timer, system_clock
from notify.settings import ChannelRoute
from policy.state import PolicyState

DELAY_ROUTE = "delay-due"


def standing_down(due: HoldDue, state: PolicyState) -> TimerOutcome | None:
    """Why nobody needs telling (None: the hold is still pending and due). Pure, on the policy state as of now."""
    pending = state.pending_delay(due.patient, due.alert_key)
    if pending is None:
        return TimerOutcome.NOT_PENDING
    if pending.at != due.held_at:
        return TimerOutcome.SUPERSEDED
    return None


class DelayDueHandler:
    """The `delay-due` timer handler."""

    def __init__(self, routes: Mapping[str, ChannelRoute], *, clock: Clock = system_clock) -> None:
        self._route = routes.get(DELAY_ROUTE)
        self._clock = clock

    def fire(self, timer: Timer, uow: NotifyUnitOfWork) -> None:
        due = HoldDue.from_payload(timer.payload)
        now = self._clock()
        outcome = standing_down(due, policy_ledger(uow, due.patient).state)
        if outcome is None:
            outcome = self._notify(timer, due, uow)
        details = {"alert_key": due.alert_key, "reason": due.reason, "until": due.until.isoformat()}
        audit_outcome(uow, TimerAuditKind.DELAY_DUE, timer, outcome, now, details)

    def _notify(self, timer: Timer, due: HoldDue, uow: NotifyUnitOfWork) -> TimerOutcome:
        # Only webhooks: a FHIR Communication would need the EHR's patient id, which the store does not keep.
        if self._route is None or self._route.channel != ChannelName.WEBHOOK:
            return TimerOutcome.NO_ROUTE
        uow.outbox.enqueue(OutboundMessage(ChannelName.WEBHOOK, self._route.target, _body(due), timer.key))
        return TimerOutcome.NOTIFIED


def _body(due: HoldDue) -> dict[str, Any]:
    return {
        "event": "delay-due",
        "patient": due.patient,
        "alert_key": due.alert_key,
        "band": due.band,
        "reason": due.reason,
        "held_at": due.held_at.isoformat(),
        "until": due.until.isoformat(),
    }
