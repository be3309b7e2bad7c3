"""The policy state port: a read-only snapshot of what happened before, and an in-memory adapter built from events."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from policy.events import (
    AlertAcknowledged,
    AlertDelayed,
    AlertDismissed,
    AlertSnoozed,
    AlertSuppressed,
    AlertSurfaced,
    DelayCancelled,
    DelayReleased,
    EscalationStarted,
    EscalationStepReached,
    OutputEvaluated,
    PolicyEvent,
    Silence,
    SilenceCreated,
    SilenceExpired,
)


@dataclass(frozen=True, slots=True)
class Escalation:
    """A ladder under way: how many rungs have been reached (the first at the start) and whether anyone answered."""

    started: EscalationStarted
    reached: int = 1
    acknowledged_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None


class PolicyState(Protocol):
    """What the engine may read about the past. The engine never writes: it returns events for an adapter to apply."""

    def last_seen(self, patient: str, alert_key: str) -> OutputEvaluated | None: ...

    def last_surfaced(self, patient: str, alert_key: str) -> AlertSurfaced | None: ...

    def last_dismissal(self, patient: str, alert_key: str) -> AlertDismissed | None: ...

    def dismissals_since(self, patient: str, since: datetime) -> int: ...

    def last_snooze(self, patient: str, alert_key: str) -> AlertSnoozed | None: ...

    def pending_delay(self, patient: str, alert_key: str) -> AlertDelayed | None: ...

    def escalation(self, patient: str, alert_key: str) -> Escalation | None: ...

    def open_escalations(self) -> tuple[Escalation, ...]: ...

    def active_alerts(self, patient: str, now: datetime) -> tuple[AlertSurfaced, ...]: ...

    def silences(self, now: datetime) -> tuple[Silence, ...]: ...

    def interruptive_count(self, unit_id: str | None, since: datetime) -> int: ...


_Key = tuple[str, str]


class InMemoryPolicyState:
    """The state as dictionaries, for tests, the case runner's simulated clock and replay."""

    def __init__(self, events: Iterable[PolicyEvent] = ()) -> None:
        self._seen: dict[_Key, OutputEvaluated] = {}
        self._surfaced: dict[_Key, AlertSurfaced] = {}
        # Indexes for the queries a decision makes: alert keys shown per patient, interruptive cards per unit.
        self._keys_by_patient: dict[str, set[str]] = {}
        self._interruptive_at: dict[str | None, list[datetime]] = {}
        self._dismissed: dict[_Key, AlertDismissed] = {}
        self._dismissed_at: dict[str, list[datetime]] = {}
        self._snoozed: dict[_Key, AlertSnoozed] = {}
        self._delays: dict[_Key, AlertDelayed] = {}
        self._escalations: dict[_Key, Escalation] = {}
        self._silences: dict[str, Silence] = {}
        self.apply(events)

    def apply(self, events: Iterable[PolicyEvent]) -> None:
        for event in events:
            self._apply_one(event)

    def _apply_one(self, event: PolicyEvent) -> None:
        # The common events are found by their exact type; anything else (a subclass) goes the long way.
        if type(event) is OutputEvaluated:
            self._seen[(event.patient, event.alert_key)] = event
        elif type(event) is AlertSuppressed:
            pass  # nothing reads suppressions back
        else:
            self._apply_other(event)

    def _apply_other(self, event: PolicyEvent) -> None:
        if isinstance(event, SilenceCreated):
            self._silences[event.silence.silence_id] = event.silence
            return
        if isinstance(event, SilenceExpired):
            silence = self._silences.get(event.silence_id)
            if silence is not None:
                self._silences[event.silence_id] = replace(silence, ends_at=min(silence.ends_at, event.at))
            return
        key = (event.patient, event.alert_key)
        if isinstance(event, OutputEvaluated):
            self._seen[key] = event
        elif isinstance(event, AlertSurfaced):
            self._surfaced[key] = event
            self._keys_by_patient.setdefault(event.patient, set()).add(event.alert_key)
            if event.interruptive:
                insort(self._interruptive_at.setdefault(event.unit_id, []), event.at)
        elif isinstance(event, AlertDismissed):
            self._dismissed[key] = event
            insort(self._dismissed_at.setdefault(event.patient, []), event.at)
            self._close_escalation(key, event.at)
        elif isinstance(event, AlertSnoozed):
            self._snoozed[key] = event
        elif isinstance(event, AlertDelayed):
            self._delays[key] = event
        elif isinstance(event, DelayReleased | DelayCancelled):
            self._delays.pop(key, None)
        elif isinstance(event, EscalationStarted):
            self._escalations[key] = Escalation(started=event)
        elif isinstance(event, EscalationStepReached):
            running = self._escalations.get(key)
            if running is not None:
                self._escalations[key] = replace(running, reached=max(running.reached, event.index + 1))
        elif isinstance(event, AlertAcknowledged):
            self._close_escalation(key, event.at)

    def _close_escalation(self, key: _Key, at: datetime) -> None:
        running = self._escalations.get(key)
        if running is not None and running.open:
            self._escalations[key] = replace(running, acknowledged_at=at)

    def last_seen(self, patient: str, alert_key: str) -> OutputEvaluated | None:
        return self._seen.get((patient, alert_key))

    def last_surfaced(self, patient: str, alert_key: str) -> AlertSurfaced | None:
        return self._surfaced.get((patient, alert_key))

    def last_dismissal(self, patient: str, alert_key: str) -> AlertDismissed | None:
        return self._dismissed.get((patient, alert_key))

    def dismissals_since(self, patient: str, since: datetime) -> int:
        times = self._dismissed_at.get(patient, [])
        return len(times) - bisect_left(times, since)

    def last_snooze(self, patient: str, alert_key: str) -> AlertSnoozed | None:
        return self._snoozed.get((patient, alert_key))

    def pending_delay(self, patient: str, alert_key: str) -> AlertDelayed | None:
        return self._delays.get((patient, alert_key))

    def escalation(self, patient: str, alert_key: str) -> Escalation | None:
        return self._escalations.get((patient, alert_key))

    def open_escalations(self) -> tuple[Escalation, ...]:
        return tuple(e for e in self._escalations.values() if e.open)

    def active_alerts(self, patient: str, now: datetime) -> tuple[AlertSurfaced, ...]:
        # An alert stops firing when its window ends or when the same key was last seen in another band.
        out = []
        for key in sorted(self._keys_by_patient.get(patient, ())):
            alert = self._surfaced[(patient, key)]
            seen = self._seen.get((patient, key))
            if alert.active_until > now and (seen is None or seen.band == alert.band):
                out.append(alert)
        return tuple(out)

    def silences(self, now: datetime) -> tuple[Silence, ...]:
        return tuple(s for s in self._silences.values() if s.active(now))

    def all_silences(self) -> tuple[Silence, ...]:
        """Every silence ever created, expired ones included, for listing."""
        return tuple(self._silences.values())

    def interruptive_count(self, unit_id: str | None, since: datetime) -> int:
        times = self._interruptive_at.get(unit_id, [])
        return len(times) - bisect_left(times, since)


def apply(state: InMemoryPolicyState, events: Iterable[PolicyEvent]) -> InMemoryPolicyState:
    """Fold events into the in-memory state and return it (the engine itself never mutates state)."""
    state.apply(events)
    return state
