"""The policy state reads a patient's history once per snapshot: answers beyond what it loads, reads after its own
transaction appended, long and repeated ladders, and hook-call rows that must line up with their ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from policy.events import (
    AlertAcknowledged,
    AlertDelayed,
    AlertDismissed,
    DelayReleased,
    EscalationStarted,
    EscalationStepReached,
    OutputEvaluated,
    PolicyEvent,
)
from policy.port import EscalationStep, Indicator, Reason
from policy.state import InMemoryPolicyState
from store.db import make_session_factory
from store.policy_state import (
    _INTERRUPTIVE_IN_UNIT_SQL,
    _INTERRUPTIVE_NO_UNIT_SQL,
    SqlPolicyState,
    record_events,
)
from store.port import ScoredDecision
from store.repository import SqlUnitOfWork
from store.tables import DecisionRow, RiskOutputRow
from tests.unit.store import builders

START = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)
HELD = Reason.DELAYED
STEPS = (EscalationStep("nurse", "card", 0), EscalationStep("charge-nurse", "pager", 15))


def test_dismissals_older_than_the_loaded_newest_are_still_counted(session: Session) -> None:
    # More dismissals than the snapshot keeps, on two alerts: counts reaching past them must ask the database.
    events: list[PolicyEvent] = [
        AlertDismissed("p1", "news2" if i % 2 else "qsofa", "high", Indicator.WARNING, START + timedelta(minutes=i))
        for i in range(80)
    ]
    record_events(session, events)
    memory = InMemoryPolicyState(events)
    state = SqlPolicyState(session)

    for minutes in (-5, 0, 10, 29, 30, 31, 55, 79, 80):
        since = START + timedelta(minutes=minutes)
        assert state.dismissals_since("p1", since) == memory.dismissals_since("p1", since) > -1


def test_a_state_read_after_its_transaction_appended_sees_the_new_events(session: Session) -> None:
    state = SqlPolicyState(session)
    assert state.last_seen("p1", "news2") is None

    seen = OutputEvaluated("p1", "news2", "high", START)
    record_events(session, [seen])

    assert state.last_seen("p1", "news2") == seen


def test_the_newest_ladder_of_a_long_history_is_the_one_answered(session: Session) -> None:
    events: list[PolicyEvent] = []
    for hour in range(30):
        at = START + timedelta(hours=hour)
        events.append(OutputEvaluated("p1", "news2", "high" if hour % 3 else "medium", at))
        events.append(OutputEvaluated("p1", "qsofa", "low", at))
    first, second = START + timedelta(hours=2), START + timedelta(hours=20)
    later = second + timedelta(minutes=40)
    events += [
        EscalationStarted("p1", "news2", "high", STEPS, first),
        EscalationStepReached("p1", "news2", 1, STEPS[1], first + timedelta(minutes=15)),
        AlertAcknowledged("p1", "news2", first + timedelta(minutes=20)),
        AlertDismissed("p1", "news2", "high", Indicator.WARNING, first + timedelta(minutes=30)),
        EscalationStarted("p1", "news2", "high", STEPS, second),
        AlertDelayed("p1", "qsofa", "medium", "hold", second, second + timedelta(hours=1), HELD),
        DelayReleased("p1", "qsofa", HELD, second + timedelta(minutes=30)),
        AlertDelayed("p1", "qsofa", "medium", "hold", later, later + timedelta(hours=1), HELD),
    ]
    record_events(session, events)
    memory = InMemoryPolicyState(events)
    state = SqlPolicyState(session)

    for key in ("news2", "qsofa", "sirs"):
        assert state.last_seen("p1", key) == memory.last_seen("p1", key)
        assert state.escalation("p1", key) == memory.escalation("p1", key)
        assert state.pending_delay("p1", key) == memory.pending_delay("p1", key)
        assert state.last_dismissal("p1", key) == memory.last_dismissal("p1", key)
    escalation = state.escalation("p1", "news2")
    assert escalation is not None and escalation.open and escalation.reached == 1
    assert state.open_escalations() == memory.open_escalations()
    assert state.last_seen("p2", "news2") is None


def test_each_decision_row_belongs_to_the_risk_output_of_its_result(migrated_engine: Engine) -> None:
    call = builders.hook_call()
    outputs = [
        builders.risk_output(scorer, score=float(i), band=band)
        for i, (scorer, band) in enumerate([("news2", "high"), ("qsofa", "low"), ("sirs", "medium"), ("x", "low")])
    ]
    results = tuple(ScoredDecision(output=output, decision=builders.decision()) for output in outputs)
    uow = SqlUnitOfWork(migrated_engine)
    with uow:
        uow.repo.record_hook_call(replace(call, results=results, response={"cards": []}))
        uow.commit()
    with make_session_factory(migrated_engine)() as session:
        rows = session.execute(
            select(DecisionRow.id, RiskOutputRow.id, RiskOutputRow.scorer_id)
            .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
            .order_by(DecisionRow.id)
        ).all()
    assert [scorer for _, _, scorer in rows] == ["news2", "qsofa", "sirs", "x"]
    assert [output_id for _, output_id, _ in rows] == sorted(output_id for _, output_id, _ in rows)


def test_the_units_interruptive_count_is_read_from_the_index_alone(session: Session) -> None:
    # Every hook call counts the unit's interruptive cards since the shift began; read row by row from the table,
    # that count grew with the shift (370 µs for a thousand cards on SQLite). The plan must stay index-only.
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the query plan is SQLite's; PostgreSQL chooses by table statistics")
    for statement in (_INTERRUPTIVE_IN_UNIT_SQL, _INTERRUPTIVE_NO_UNIT_SQL):
        plan = session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement,
            {"unit": "icu-4", "yes": True, "since": "2026-01-14 06:00:00.000000"},
        )
        details = " ".join(str(row[-1]) for row in plan)
        assert "USING COVERING INDEX ix_policy_events_unit_kind_interruptive_at" in details, details
