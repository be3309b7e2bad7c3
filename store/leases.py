"""Claiming due rows for one worker: the lease pattern the timers and the outbox share.

Due rows are selected with FOR UPDATE SKIP LOCKED, so concurrent workers on PostgreSQL each take different rows
without waiting; SQLite renders no FOR UPDATE, and there the transaction already holds the only writer lock (BEGIN
IMMEDIATE). The claim is published when the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, select, update
from sqlalchemy.orm import Session


def claim_rows(
    session: Session,
    table: Table,
    *,
    due: ColumnElement[bool],
    order_by: Sequence[ColumnElement[Any]],
    limit: int,
    values: dict[str, Any],
) -> list[Row[Any]]:
    """Lock up to `limit` rows matching `due`, in `order_by` order, set `values` on them and return them whole."""
    ids = list(
        session.scalars(
            select(table.c.id).where(due).order_by(*order_by).limit(limit).with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    return list(session.execute(update(table).where(table.c.id.in_(ids)).values(**values).returning(*table.c)))


def release_rows(
    session: Session,
    table: Table,
    ids: Sequence[int],
    worker_id: str,
    *,
    claimed: ColumnElement[bool],
    values: dict[str, Any],
) -> int:
    """Give back rows this worker claimed but has not started (`claimed` says what a claimed row looks like): the
    lease is dropped, the attempt the claim counted is taken back, and `values` set. Returns how many."""
    if not ids:
        return 0
    statement = (
        update(table)
        .where(table.c.id.in_(ids), claimed, table.c.locked_by == worker_id)
        .values(locked_by=None, locked_until=None, attempts=table.c.attempts - 1, **values)
        .returning(table.c.id)
    )
    return len(session.execute(statement).all())
