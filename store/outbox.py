"""The transactional outbox in the database: enqueue in the caller's transaction, claim with a lease (SKIP LOCKED on
PostgreSQL), record each attempt's outcome, and list and retry dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from notify.port import Clock, OutboundMessage, OutboxItem, OutboxState, system_clock
from store.documents import plain_json
from store.leases import claim_rows, release_rows
from store.tables import OutboxRow

_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_ERROR_MAX = 256


def enqueue(session: Session, message: OutboundMessage, *, now: datetime) -> bool:
    """Store a message in the caller's transaction, due at once. False when its idempotency key is already stored:
    the earlier message stands, whatever its state."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_OUTBOX)
        .values(
            channel=str(message.channel),
            target=message.target,
            payload=plain_json(message.payload),
            idempotency_key=message.idempotency_key,
            state=OutboxState.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_OUTBOX.c.id)
    )
    return session.execute(statement).first() is not None


def claim_due(session: Session, *, now: datetime, worker_id: str, limit: int, lease: timedelta) -> list[OutboxItem]:
    """Lease up to `limit` due messages to `worker_id` and count the attempt. Rows locked by another worker are
    skipped; a `delivering` row whose lease ran out (its worker died mid-send) is due again. Commit to publish."""
    claimed = claim_rows(
        session,
        _OUTBOX,
        due=or_(
            and_(_OUTBOX.c.state == OutboxState.PENDING.value, _OUTBOX.c.next_attempt_at <= now),
            and_(_OUTBOX.c.state == OutboxState.DELIVERING.value, _OUTBOX.c.locked_until <= now),
        ),
        order_by=(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id),
        limit=limit,
        values={
            "state": OutboxState.DELIVERING.value,
            "locked_by": worker_id,
            "locked_until": now + lease,
            "attempts": _OUTBOX.c.attempts + 1,
        },
    )
    return sorted((_item(row) for row in claimed), key=lambda item: (item.next_attempt_at, item.id))


def mark_delivered(session: Session, item_id: int, worker_id: str, *, now: datetime) -> bool:
    """False when the row is no longer this worker's (its lease ran out and another worker took it over)."""
    return _finish(session, item_id, worker_id, state=OutboxState.DELIVERED.value, delivered_at=now)


def schedule_retry(session: Session, item_id: int, worker_id: str, *, error: str, next_attempt_at: datetime) -> bool:
    return _finish(
        session,
        item_id,
        worker_id,
        state=OutboxState.PENDING.value,
        next_attempt_at=next_attempt_at,
        last_error=error[:_ERROR_MAX],
    )


def mark_dead(session: Session, item_id: int, worker_id: str, *, error: str) -> bool:
    return _finish(session, item_id, worker_id, state=OutboxState.DEAD.value, last_error=error[:_ERROR_MAX])


def release(session: Session, item_ids: Sequence[int], worker_id: str) -> int:
    """Give back claimed messages this worker has not started sending (graceful shutdown); not counted as tried."""
    claimed = _OUTBOX.c.state == OutboxState.DELIVERING.value
    return release_rows(
        session, _OUTBOX, item_ids, worker_id, claimed=claimed, values={"state": OutboxState.PENDING.value}
    )


def dead_letters(session: Session, *, limit: int = 100) -> list[OutboxItem]:
    query = select(_OUTBOX).where(_OUTBOX.c.state == OutboxState.DEAD.value).order_by(_OUTBOX.c.id).limit(limit)
    return [_item(row) for row in session.execute(query)]


def retry_dead(session: Session, item_id: int, *, now: datetime) -> OutboxItem | None:
    """Put a dead letter back in the queue, due now, with a fresh attempt budget. None when it is not dead."""
    statement = (
        update(_OUTBOX)
        .where(_OUTBOX.c.id == item_id, _OUTBOX.c.state == OutboxState.DEAD.value)
        .values(state=OutboxState.PENDING.value, attempts=0, next_attempt_at=now, locked_by=None, locked_until=None)
        .returning(*_OUTBOX.c)
    )
    row = session.execute(statement).first()
    return None if row is None else _item(row)


def get(session: Session, item_id: int) -> OutboxItem | None:
    row = session.execute(select(_OUTBOX).where(_OUTBOX.c.id == item_id)).first()
    return None if row is None else _item(row)


def find(session: Session, idempotency_key: str) -> OutboxItem | None:
    row = session.execute(select(_OUTBOX).where(_OUTBOX.c.idempotency_key == idempotency_key)).first()
    return None if row is None else _item(row)


def count_by_state(session: Session) -> dict[OutboxState, int]:
    rows = session.execute(select(_OUTBOX.c.state, func.count()).group_by(_OUTBOX.c.state))
    counts = dict.fromkeys(OutboxState, 0)
    for state, count in rows:
        counts[OutboxState(state)] = count
    return counts


def _finish(session: Session, item_id: int, worker_id: str, **values: Any) -> bool:
    statement = (
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id == item_id,
            _OUTBOX.c.state == OutboxState.DELIVERING.value,
            _OUTBOX.c.locked_by == worker_id,
        )
        .values(locked_by=None, locked_until=None, **values)
        .returning(_OUTBOX.c.id)
    )
    return session.execute(statement).first() is not None


def _item(row: Row[Any]) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        channel=row.channel,
        target=row.target,
        payload=row.payload,
        idempotency_key=row.idempotency_key,
        state=OutboxState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


class SqlOutbox:
    """The `OutboxWriter` port on one session: messages stored in the caller's transaction."""

    def __init__(self, session: Session, clock: Clock = system_clock) -> None:
        self._session = session
        self._clock = clock

    def enqueue(self, message: OutboundMessage) -> bool:
        return enqueue(self._session, message, now=self._clock())
