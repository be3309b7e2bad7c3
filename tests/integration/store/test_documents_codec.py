"""A JSON document reads back the same whichever path wrote it: the engine's JSON columns and the hot path's raw
statements (store.driver) write one text, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from store.driver import cursor_of, driver_of, insert_rows
from store.tables import PolicyEventRow

AT = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)
_EVENTS = PolicyEventRow.__table__


def _written_both_ways(engine: Engine, payload: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The payload stored once by the ORM and once by a raw statement; read back by the ORM (both rows) and by
    the driver's own reader (the raw row)."""
    with Session(engine) as session:
        session.add(PolicyEventRow(at=AT, kind="ORM", payload=payload))
        session.flush()
        driver = driver_of(session)
        cursor = cursor_of(session)
        try:
            insert_rows(
                cursor, driver, _EVENTS, ("at", "kind", "interruptive", "payload"), [(AT, "RAW", False, payload)]
            )
            cursor.execute(driver.sql("SELECT payload FROM policy_events WHERE kind = 'RAW'"))
            raw_read = driver.read_document(cursor.fetchone()[0])
        finally:
            cursor.close()
        session.commit()
        read = dict(session.execute(select(PolicyEventRow.kind, PolicyEventRow.payload)).all())
    return read["ORM"], read["RAW"], raw_read


def test_a_document_reads_back_equal_through_either_write_path(migrated_engine: Engine) -> None:
    payload = {"score": 0.125, "band": "high", "inputs": [{"name": "heart_rate", "value": 118.0}], "é": "ü", "n": None}
    orm, raw, raw_read = _written_both_ways(migrated_engine, payload)
    assert orm == raw == raw_read == payload


def test_numpy_numbers_and_integer_keys_are_stored_as_json_numbers_and_strings(migrated_engine: Engine) -> None:
    # A model's feature values come out of numpy; counts keyed by hour are ints. Both are stored, not refused.
    payload = {"value": np.float32(0.5), "count": np.int64(3), "by_hour": {1: "a", 24: "b"}}
    expected = {"value": 0.5, "count": 3, "by_hour": {"1": "a", "24": "b"}}
    assert _written_both_ways(migrated_engine, payload) == (expected, expected, expected)


def test_a_number_json_cannot_hold_is_stored_as_null_on_both_backends(migrated_engine: Engine) -> None:
    # json.dumps wrote a bare NaN: SQLite kept text no JSON reader takes, and PostgreSQL refused the whole call.
    payload = {"score": float("nan"), "upper": float("inf")}
    assert _written_both_ways(migrated_engine, payload) == ({"score": None, "upper": None},) * 3


def test_a_value_json_has_no_form_for_is_refused_with_its_type(migrated_engine: Engine) -> None:
    # The engine wraps the codec's TypeError in its StatementError; the message names the type either way.
    with pytest.raises((TypeError, StatementError), match="not JSON serializable: set"):
        _written_both_ways(migrated_engine, {"codes": {"8867-4"}})
