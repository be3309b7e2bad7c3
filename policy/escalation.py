"""Escalation ladders: which rungs are due, unacknowledged, at a given time; also the scheduler's tick."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from policy.events import EscalationStepReached
from policy.port import EscalationStep, Indicator
from policy.state import Escalation, PolicyState

_ORDER = {Indicator.INFO: 0, Indicator.WARNING: 1, Indicator.CRITICAL: 2}


def raise_indicator(indicator: Indicator) -> Indicator:
    """Escalation raises the card to critical; nothing an escalation does can lower it."""
    return max(indicator, Indicator.CRITICAL, key=_ORDER.__getitem__)


def indicator_rank(indicator: Indicator) -> int:
    return _ORDER[indicator]


def due_steps(
    patient: str,
    alert_key: str,
    steps: tuple[EscalationStep, ...],
    started_at: datetime,
    reached: int,
    now: datetime,
) -> list[EscalationStepReached]:
    """Rungs after the `reached` first ones whose `after_minutes` have passed since the ladder started."""
    return [
        EscalationStepReached(patient, alert_key, index, step, now)
        for index, step in enumerate(steps)
        if index >= reached and now >= started_at + timedelta(minutes=step.after_minutes)
    ]


def _due(escalation: Escalation, now: datetime) -> list[EscalationStepReached]:
    started = escalation.started
    return due_steps(started.patient, started.alert_key, started.steps, started.at, escalation.reached, now)


def due_escalation_steps(state: PolicyState, now: datetime) -> list[EscalationStepReached]:
    """Every open ladder's rungs now due: what a scheduler calls between hook calls to notify the next role."""
    out: list[EscalationStepReached] = []
    for escalation in _sorted(state.open_escalations()):
        out.extend(_due(escalation, now))
    return out


def _sorted(escalations: Iterable[Escalation]) -> list[Escalation]:
    # A stable order, so the same state always yields the same notifications in the same order.
    return sorted(escalations, key=lambda e: (e.started.at, e.started.patient, e.started.alert_key))
