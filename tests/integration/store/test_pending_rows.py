"""A transaction's hook-call rows wait on the session and go in together (store.pending): nothing that reads the store
inside the transaction can tell, a batch writes each table once, and a savepoint or a rollback loses nothing it
should keep. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from policy.engine import Evaluation
from policy.port import Reason
from scoring.port import RiskOutput
from store import pending
from store.pending import pending_rows
from store.policy_state import _SILENCES_SQL, SqlPolicyState, record_evaluations, record_events
from store.port import HookCall, ScoredDecision
from store.repository import SqlRepository
from store.tables import CardRow, DecisionRow, HookCallRow, PolicyEventRow, RiskOutputRow
from tests.integration.policy.test_sql_policy_state import (
    DETERIORATION,
    START,
    UNITS,
    _answers,
    _replay_both,
    _silence,
    _transaction,
)
from tests.strategies import policy_histories
from tests.unit.policy.support import START as NOW
from tests.unit.policy.support import context, output


def _record_call(
    session: Session, outputs: list[RiskOutput], evaluations: list[Evaluation], patient_key: str | None
) -> str:
    """Record one hook call's evaluations as the pipeline does: its row at once, the rest waiting."""
    hook_instance = str(uuid.uuid4())
    first = evaluations[0].decision
    results = tuple(
        ScoredDecision(
            output=output,
            decision=evaluation.decision,
            card={"uuid": str(uuid.uuid4()), "summary": "s"},
            trace=evaluation.trace.to_dict(),
        )
        for output, evaluation in zip(outputs, evaluations, strict=True)
    )
    recorded = SqlRepository(session).record_hook_call(
        HookCall(
            hook_instance=hook_instance,
            service_id="svc",
            hook="patient-view",
            actor="test",
            received_at=first.decided_at,
            response={"cards": []},
            results=results,
            patient_key=patient_key,
        )
    )
    assert recorded.created
    record_evaluations(session, hook_instance, evaluations)
    return hook_instance


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=policy_histories(max_steps=15))
def test_the_state_read_while_rows_wait_answers_as_the_in_memory_state(migrated_engine: Engine, history: Any) -> None:
    def record_decision(session: Session, out: RiskOutput, evaluations: list[Evaluation], patient: str) -> None:
        _record_call(session, [out], evaluations, patient)  # its events wait on the session

    with _transaction(migrated_engine) as session:
        memory, now = _replay_both(session, history, record_decision)

        # The unit's interruptive count adds the waiting cards without writing them.
        waiting = pending_rows(session)
        was_waiting = waiting is not None and bool(waiting.calls)
        state = SqlPolicyState(session)
        for hours in (0, 1, 4, 24):
            for unit in UNITS:
                since = now - timedelta(hours=hours)
                assert state.interruptive_count(unit, since) == memory.interruptive_count(unit, since)
        assert was_waiting == (waiting is not None and bool(waiting.calls))
        assert _answers(SqlPolicyState(session), now) == _answers(memory, now)


def _one_call(session: Session, patient: str) -> str:
    """A call on unit 4N with two outputs, each surfaced as an interruptive card, neither arming a timer."""
    outputs = [output("news2", "medium"), output("qsofa", "positive", 2)]
    evaluations = DETERIORATION.evaluate_all(outputs, context(patient=patient), SqlPolicyState(session), NOW)
    return _record_call(session, outputs, evaluations, patient)


def _count(session: Session, row: type) -> int:
    return session.scalar(select(func.count()).select_from(row)) or 0


def test_a_statement_run_through_the_session_sees_the_waiting_rows(migrated_engine: Engine) -> None:
    with _transaction(migrated_engine) as session:
        _one_call(session, "p1")
        assert pending_rows(session) is not None and pending_rows(session).calls  # type: ignore[union-attr]

        assert (_count(session, RiskOutputRow), _count(session, DecisionRow), _count(session, CardRow)) == (2, 2, 2)
        assert _count(session, PolicyEventRow) > 0
        assert not pending_rows(session).calls  # type: ignore[union-attr]


def test_a_batch_commits_every_call_and_writes_each_table_once(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    insert_rows = pending.insert_rows

    def counting(cursor: Any, driver: Any, table: Any, *args: Any, **kwargs: Any) -> list[int]:
        written.append(table.name)
        return insert_rows(cursor, driver, table, *args, **kwargs)

    monkeypatch.setattr(pending, "insert_rows", counting)
    with _transaction(migrated_engine) as session:
        for patient in ("p1", "p2", "p3"):
            _one_call(session, patient)
        assert written == []
        session.commit()

        assert sorted(written) == ["cards", "decisions", "policy_events", "risk_outputs"]
        assert _count(session, HookCallRow) == 3
        assert (_count(session, RiskOutputRow), _count(session, DecisionRow), _count(session, CardRow)) == (6, 6, 6)
        # Each row went with its own call's decision.
        pairs = session.execute(
            select(RiskOutputRow.hook_instance, CardRow.hook_instance)
            .join(DecisionRow, DecisionRow.risk_output_id == RiskOutputRow.id)
            .join(CardRow, CardRow.decision_id == DecisionRow.id)
        ).all()
        assert len(pairs) == 6 and all(a == b for a, b in pairs)
        events = session.execute(
            select(PolicyEventRow.patient_key, RiskOutputRow.patient_key)
            .join(DecisionRow, PolicyEventRow.decision_id == DecisionRow.id)
            .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
        ).all()
        assert events and all(a == b for a, b in events)


def test_rows_recorded_before_a_savepoint_outlive_its_rollback(migrated_engine: Engine) -> None:
    with _transaction(migrated_engine) as session:
        _one_call(session, "p1")
        savepoint = session.begin_nested()
        savepoint.rollback()
        session.commit()

        assert (_count(session, RiskOutputRow), _count(session, DecisionRow), _count(session, CardRow)) == (2, 2, 2)


def test_a_rollback_drops_the_waiting_rows(migrated_engine: Engine) -> None:
    with _transaction(migrated_engine) as session:
        _one_call(session, "p1")
        session.rollback()
        session.commit()

        assert pending_rows(session) is None
        assert (_count(session, HookCallRow), _count(session, RiskOutputRow)) == (0, 0)


def test_the_interruptive_count_of_a_unit_includes_the_waiting_cards(migrated_engine: Engine) -> None:
    with _transaction(migrated_engine) as session:
        _one_call(session, "p1")
        since = NOW - timedelta(hours=1)
        waiting = SqlPolicyState(session).interruptive_count("4N", since)
        assert pending_rows(session).calls  # type: ignore[union-attr]  # counted, not written

        _count(session, DecisionRow)  # a statement through the session writes them
        assert SqlPolicyState(session).interruptive_count("4N", since) == waiting == 2


def test_a_second_call_for_the_patient_reads_the_first_ones_waiting_events(migrated_engine: Engine) -> None:
    with _transaction(migrated_engine) as session:
        outputs = [output("news2", "medium")]
        first = DETERIORATION.evaluate_all(outputs, context(patient="p1"), SqlPolicyState(session), NOW)
        _record_call(session, outputs, first, "p1")
        other = DETERIORATION.evaluate_all(outputs, context(patient="p2"), SqlPolicyState(session), NOW)
        assert pending_rows(session).calls  # type: ignore[union-attr]  # another patient's read writes nothing

        again = DETERIORATION.evaluate_all(outputs, context(patient="p1"), SqlPolicyState(session), NOW)

    assert first[0].decision.card is not None and other[0].decision.card is not None
    # The same alert again, seen in the events of the first call: held back as a duplicate.
    assert again[0].decision.card is None and Reason.DUPLICATE in again[0].decision.reasons


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
