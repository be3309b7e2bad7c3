"""A state seen through the events of the current hook call, so one call's outputs are decided as a sequence."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from policy.events import (
    AlertDelayed,
    AlertDismissed,
    AlertSnoozed,
    AlertSurfaced,
    DelayCancelled,
    DelayReleased,
    OutputEvaluated,
    PolicyEvent,
    Silence,
)
from policy.state import Escalation, InMemoryPolicyState, PolicyState


class OverlayState:
    """Reads the newest events first, then the underlying state; the underlying state is never written."""

    def __init__(self, base: PolicyState) -> None:
        self._base = base
        self._new = InMemoryPolicyState()
        # Keys whose pending delay the new events resolved (released or cancelled): the base's copy is stale.
        self._delay_closed: set[tuple[str, str]] = set()

    def add(self, events: Iterable[PolicyEvent]) -> None:
        events = list(events)
        for event in events:
            if isinstance(event, DelayReleased | DelayCancelled):
                self._delay_closed.add((event.patient, event.alert_key))
            elif isinstance(event, AlertDelayed):
                self._delay_closed.discard((event.patient, event.alert_key))
        self._new.apply(events)

    def last_seen(self, patient: str, alert_key: str) -> OutputEvaluated | None:
        return self._new.last_seen(patient, alert_key) or self._base.last_seen(patient, alert_key)

    def last_surfaced(self, patient: str, alert_key: str) -> AlertSurfaced | None:
        return self._new.last_surfaced(patient, alert_key) or self._base.last_surfaced(patient, alert_key)

    def last_dismissal(self, patient: str, alert_key: str) -> AlertDismissed | None:
        return self._new.last_dismissal(patient, alert_key) or self._base.last_dismissal(patient, alert_key)

    def dismissals_since(self, patient: str, since: datetime) -> int:
        return self._new.dismissals_since(patient, since) + self._base.dismissals_since(patient, since)

    def last_snooze(self, patient: str, alert_key: str) -> AlertSnoozed | None:
        return self._new.last_snooze(patient, alert_key) or self._base.last_snooze(patient, alert_key)

    def pending_delay(self, patient: str, alert_key: str) -> AlertDelayed | None:
        fresh = self._new.pending_delay(patient, alert_key)
        if fresh is not None or (patient, alert_key) in self._delay_closed:
            return fresh
        return self._base.pending_delay(patient, alert_key)

    def escalation(self, patient: str, alert_key: str) -> Escalation | None:
        return self._new.escalation(patient, alert_key) or self._base.escalation(patient, alert_key)

    def open_escalations(self) -> tuple[Escalation, ...]:
        fresh = {(e.started.patient, e.started.alert_key): e for e in self._new.open_escalations()}
        old = [e for e in self._base.open_escalations() if (e.started.patient, e.started.alert_key) not in fresh]
        return (*old, *fresh.values())

    def active_alerts(self, patient: str, now: datetime) -> tuple[AlertSurfaced, ...]:
        fresh = self._new.active_alerts(patient, now)
        keys = {a.alert_key for a in fresh}
        return (*(a for a in self._base.active_alerts(patient, now) if a.alert_key not in keys), *fresh)

    def silences(self, now: datetime) -> tuple[Silence, ...]:
        return self._base.silences(now)

    def interruptive_count(self, unit_id: str | None, since: datetime) -> int:
        return self._new.interruptive_count(unit_id, since) + self._base.interruptive_count(unit_id, since)
