"""The hot path's raw multi-row INSERT: however many statements the rows are split into, every row goes in once and
the ids come back in the rows' order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.driver import cursor_of, driver_of, insert_rows
from store.tables import PolicyEventRow

AT = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)
COLUMNS = ("at", "kind", "patient_key", "alert_key", "interruptive", "payload")


@pytest.mark.parametrize("count", [1, 4, 5, 9, 23])
def test_ids_come_back_in_the_order_of_the_rows(migrated_engine: Engine, count: int) -> None:
    # 7 values a row: on PostgreSQL 7 rows fill one statement psycopg keeps parsed (6 values and the row number).
    rows = [
        (AT + timedelta(minutes=i), f"Kind{i}", f"patient-{i}", f"alert-{count - i}", i % 2 == 0, {"row": i})
        for i in range(count)
    ]
    with Session(migrated_engine) as session:
        cursor = cursor_of(session)
        try:
            ids = insert_rows(cursor, driver_of(session), PolicyEventRow.__table__, COLUMNS, rows, returning_ids=True)
        finally:
            cursor.close()
        session.commit()
        stored = {row.id: (row.kind, row.payload["row"]) for row in session.query(PolicyEventRow)}
    assert len(ids) == count == len(stored)
    assert [stored[i] for i in ids] == [(f"Kind{i}", i) for i in range(count)]
