"""A transaction's hook-call rows wait on the session and go in together (store.pending): nothing that reads the store
inside the transaction can tell, a batch writes each table once, and a savepoint or a rollback loses nothing it
should keep. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
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
from store.policy_state import SqlPolicyState, record_evaluations
from store.port import HookCall, ScoredDecision
from store.repository import SqlRepository
from store.tables import CardRow, DecisionRow, HookCallRow, PolicyEventRow, RiskOutputRow
from tests.integration.policy.test_sql_policy_state import (
    DETERIORATION,
    UNITS,
    _answers,
    _replay_both,
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
