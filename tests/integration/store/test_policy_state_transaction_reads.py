"""Reads of the policy state that a transaction makes once and then keeps up to date itself: the silences, and the
unit's interruptive-card count (store.policy_state). On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from store.policy_state import _SILENCES_SQL, SqlPolicyState, record_events
from store.tables import DecisionRow
from tests.integration.policy.test_sql_policy_state import START, _silence, _transaction
from tests.integration.store.test_pending_rows import NOW, _count, _one_call


def test_silences_are_read_once_a_transaction_until_one_is_appended(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[datetime] = []
    rows = SqlPolicyState._rows

    def counting(self: SqlPolicyState, statement: str, parameters: dict[str, Any]) -> list[Any]:
        if statement == _SILENCES_SQL:
            reads.append(parameters["now"])
        return rows(self, statement, parameters)

    monkeypatch.setattr(SqlPolicyState, "_rows", counting)
    first, second = _silence("s1", START, 4), _silence("s2", START + timedelta(hours=1), 4)
    with _transaction(migrated_engine) as session:
        record_events(session, [first])

        def silences(at: datetime) -> list[str]:
            return sorted(s.silence_id for s in SqlPolicyState(session).silences(at))

        assert silences(START + timedelta(minutes=30)) == ["s1"]
        assert silences(START + timedelta(hours=3)) == ["s1"]  # a later call of the same transaction
        assert silences(START + timedelta(hours=5)) == []  # ended meanwhile: the fold says so without a read
        assert len(reads) == 1
        record_events(session, [second])
        assert silences(START + timedelta(hours=3)) == ["s1", "s2"]
        assert silences(START + timedelta(minutes=10)) == ["s1"]  # earlier than the rows read: read again
        assert len(reads) == 3
    with _transaction(migrated_engine) as session:
        assert SqlPolicyState(session).silences(START + timedelta(hours=2)) == ()  # the first was rolled back


def test_the_unit_count_is_read_once_a_transaction_and_counts_the_cards_it_appends(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str | None, Any]] = []  # (unit, since) of each count read from the database
    count = SqlPolicyState._count

    def counting(self: SqlPolicyState, statement: str, parameters: dict[str, Any]) -> int:
        reads.append((parameters.get("unit"), parameters.get("since")))
        return count(self, statement, parameters)

    monkeypatch.setattr(SqlPolicyState, "_count", counting)
    shift = NOW - timedelta(hours=1)
    with _transaction(migrated_engine) as session:
        assert SqlPolicyState(session).interruptive_count("4N", shift) == 0
        _one_call(session, "p1")  # two interruptive cards, waiting
        assert SqlPolicyState(session).interruptive_count("4N", shift) == 2
        _count(session, DecisionRow)  # writes them
        assert SqlPolicyState(session).interruptive_count("4N", shift) == 2
        _one_call(session, "p2")
        assert SqlPolicyState(session).interruptive_count("4N", shift) == 4
        assert SqlPolicyState(session).interruptive_count("5S", shift) == 0  # another unit: its own read
        # One read for each unit and start, the policy's own shift start included, whatever was appended between.
        assert len(reads) == len(set(reads)) == 3
        session.commit()
    reads.clear()
    with _transaction(migrated_engine) as session:
        # A new transaction reads again, and finds what the first one committed.
        assert SqlPolicyState(session).interruptive_count("4N", shift) == 4
        assert SqlPolicyState(session).interruptive_count("4N", NOW + timedelta(minutes=1)) == 0
        assert len(reads) == 2
