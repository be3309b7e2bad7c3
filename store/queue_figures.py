"""What the durable queues hold right now, for /metrics: outbox messages by state, pending timers and how overdue
the oldest due one is. Counts and times only, never payloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from store.tables import OutboxRow, TimerRow

_OUTBOX_STATES = ("pending", "delivering", "dead")


@dataclass(frozen=True, slots=True)
class QueueFigures:
    outbox: dict[str, int]
    timers_pending: int
    timer_lag_seconds: float


def queue_figures(engine: Engine, now: datetime) -> QueueFigures:
    """One short read: outbox counts per state, pending timers, and the lag of the most overdue pending timer."""
    with engine.connect() as connection:
        by_state = dict(
            connection.execute(
                select(OutboxRow.state, func.count())
                .where(OutboxRow.state.in_(_OUTBOX_STATES))
                .group_by(OutboxRow.state)
            ).all()
        )
        pending, oldest_due = connection.execute(
            select(func.count(), func.min(TimerRow.due_at)).where(TimerRow.state == "pending")
        ).one()
        connection.rollback()
    lag = 0.0
    if oldest_due is not None:
        due = oldest_due if oldest_due.tzinfo is not None else oldest_due.replace(tzinfo=UTC)
        lag = max(0.0, (now - due).total_seconds())
    return QueueFigures(
        outbox={state: int(by_state.get(state, 0)) for state in _OUTBOX_STATES},
        timers_pending=int(pending),
        timer_lag_seconds=lag,
    )
