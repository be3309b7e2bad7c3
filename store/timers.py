"""Durable timers in the database: schedule, cancel, claim with a lease (SKIP LOCKED on PostgreSQL), fire once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from notify.port import Clock, Timer, TimerState, system_clock
from store.documents import plain_json
from store.leases import claim_rows, release_rows
from store.tables import TimerRow

_TIMERS: Table = TimerRow.__table__  # type: ignore[assignment]
_ERROR_MAX = 256


def schedule(
    session: Session,
    kind: str,
    key: str,
    due_at: datetime,
    payload: Mapping[str, Any],
    *,
    now: datetime,
) -> bool:
    """Arm a timer in the caller's transaction. True when new; a key seen before (in any state) changes nothing."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_TIMERS)
        .values(
            kind=kind,
            key=key,
            due_at=due_at,
            payload=plain_json(payload),
            state=TimerState.PENDING.value,
            attempts=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(_TIMERS.c.id)
    )
    return session.execute(statement).first() is not None


def cancel(session: Session, key: str) -> bool:
    """Cancel a pending timer. On PostgreSQL this waits for a worker firing it right now, then finds it fired."""
    statement = (
        update(_TIMERS)
        .where(_TIMERS.c.key == key, _TIMERS.c.state == TimerState.PENDING.value)
        .values(state=TimerState.CANCELLED.value, locked_by=None, locked_until=None)
        .returning(_TIMERS.c.id)
    )
    return session.execute(statement).first() is not None


def claim_due(session: Session, *, now: datetime, worker_id: str, limit: int, lease: timedelta) -> list[Timer]:
    """Lease up to `limit` due timers to `worker_id`. Rows another worker has locked are skipped, not waited for;
    a lease that ran out (its worker died) makes the timer claimable again. Commit to publish the claim."""
    claimed = claim_rows(
        session,
        _TIMERS,
        due=and_(
            _TIMERS.c.state == TimerState.PENDING.value,
            _TIMERS.c.due_at <= now,
            # An unleased timer, or one whose lease ran out; a failed handler's retry also waits here.
            or_(_TIMERS.c.locked_until.is_(None), _TIMERS.c.locked_until <= now),
        ),
        order_by=(_TIMERS.c.due_at, _TIMERS.c.id),
        limit=limit,
        values={"locked_by": worker_id, "locked_until": now + lease, "attempts": _TIMERS.c.attempts + 1},
    )
    timers = [
        Timer(id=r.id, kind=r.kind, key=r.key, due_at=r.due_at, payload=r.payload, attempts=r.attempts) for r in claimed
    ]
    return sorted(timers, key=lambda timer: (timer.due_at, timer.id))


def mark_fired(session: Session, timer_id: int, worker_id: str, *, now: datetime) -> bool:
    """Mark a timer this worker holds as fired, taking its row lock until commit. False when the timer is no longer
    this worker's (cancelled, or re-claimed after the lease ran out): the caller must then not fire it."""
    statement = (
        update(_TIMERS)
        .where(
            _TIMERS.c.id == timer_id,
            _TIMERS.c.state == TimerState.PENDING.value,
            _TIMERS.c.locked_by == worker_id,
        )
        .values(state=TimerState.FIRED.value, fired_at=now, locked_by=None, locked_until=None)
        .returning(_TIMERS.c.id)
    )
    return session.execute(statement).first() is not None


def record_failure(session: Session, timer_id: int, worker_id: str, *, error: str, retry_at: datetime | None) -> bool:
    """After a handler raised: free the timer for another try at `retry_at`, or give up (state failed) when None."""
    values: dict[str, Any] = {"locked_by": None, "locked_until": retry_at, "last_error": error[:_ERROR_MAX]}
    if retry_at is None:
        values["state"] = TimerState.FAILED.value
    statement = (
        update(_TIMERS)
        .where(
            _TIMERS.c.id == timer_id,
            _TIMERS.c.state == TimerState.PENDING.value,
            _TIMERS.c.locked_by == worker_id,
        )
        .values(**values)
        .returning(_TIMERS.c.id)
    )
    return session.execute(statement).first() is not None


def release(session: Session, timer_ids: Sequence[int], worker_id: str) -> int:
    """Give back claimed timers this worker has not started (graceful shutdown); the claim is not counted."""
    claimed = _TIMERS.c.state == TimerState.PENDING.value
    return release_rows(session, _TIMERS, timer_ids, worker_id, claimed=claimed, values={})


def state_of(session: Session, key: str) -> TimerState | None:
    found = session.scalar(select(_TIMERS.c.state).where(_TIMERS.c.key == key))
    return None if found is None else TimerState(found)


def count_by_state(session: Session) -> dict[TimerState, int]:
    rows = session.execute(select(_TIMERS.c.state, func.count()).group_by(_TIMERS.c.state))
    counts = dict.fromkeys(TimerState, 0)
    for state, count in rows:
        counts[TimerState(state)] = count
    return counts


class SqlTimers:
    """The `TimerScheduler` port on one session: timers armed in the caller's transaction."""

    def __init__(self, session: Session, clock: Clock = system_clock) -> None:
        self._session = session
        self._clock = clock

    def schedule(self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]) -> bool:
        return schedule(self._session, kind, key, due_at, payload, now=self._clock())

    def cancel(self, key: str) -> bool:
        return cancel(self._session, key)
