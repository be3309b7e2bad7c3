"""A batch's patients locked and read ahead together (store.policy_state.prepare_patients): on PostgreSQL one round
trip instead of two a call, the same answers as reading each when asked, and the lock still taken before the read."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.pipeline import HookCallInput
from policy.events import OutputEvaluated
from store.db import make_session_factory
from store.driver import driver_for
from store.policy_state import _PATIENT_LOCK, _SNAPSHOT_SQL, SqlPolicyState, prepare_patients, record_events
from tests.integration.api.test_hook_batches import _pipeline
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.live import HIGH, _service, hook_request

START = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)


def _seen(patient: str) -> OutputEvaluated:
    return OutputEvaluated(patient, "news2", "high", START)


def test_a_patient_read_ahead_then_appended_to_is_read_again(session: Session) -> None:
    # Read ahead with no history; then an earlier call of the batch appends this patient's event: the state must
    # answer from the history as it now is, not from what was read ahead.
    prepare_patients(session, ["p1", "p2"])
    record_events(session, [_seen("p1")])

    state = SqlPolicyState(session, patient_keys=["p1"])

    assert state.last_seen("p1", "news2") == _seen("p1")
    assert state.last_seen("p2", "news2") is None


def test_a_read_ahead_answers_as_a_read_when_asked(session: Session) -> None:
    record_events(session, [_seen("p1")])
    session.commit()

    prepare_patients(session, ["p1", "p2"])
    ahead = SqlPolicyState(session, patient_keys=["p1", "p2"])
    answers = (ahead.last_seen("p1", "news2"), ahead.last_seen("p2", "news2"))
    session.commit()

    asked = SqlPolicyState(session, patient_keys=["p1", "p2"])
    assert answers == (asked.last_seen("p1", "news2"), asked.last_seen("p2", "news2")) == (_seen("p1"), None)


class _Statements:
    """The statements the PostgreSQL driver runs, each with whether it went in a pipeline."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.run: list[tuple[str, bool]] = []
        execute = psycopg.Cursor.execute

        def counted(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            piped = cursor.connection.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF
            self.run.append((str(query), piped))
            return execute(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted)

    def count(self, statement: str, *, piped: bool) -> int:
        return sum(1 for text, in_pipeline in self.run if text == statement and in_pipeline == piped)


@pytest.mark.postgres
def test_a_batch_locks_and_reads_its_patients_in_one_round_trip(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if migrated_engine.dialect.name != "postgresql":
        pytest.skip("round trips are PostgreSQL's; on SQLite a statement is a function call")
    clock = FakeClock()
    pipeline = _pipeline(migrated_engine, clock)
    bodies = [hook_request(f"ahead-{name}", clock(), HIGH) for name in "abcd"]
    statements = _Statements(monkeypatch)

    answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in bodies)

    assert all(isinstance(answer, dict) and answer["cards"] for answer in answers)
    snapshot = driver_for("postgresql").sql(_SNAPSHOT_SQL[True])
    # Four patients: their snapshots all went in the one pipeline, and no call locked or read on its own.
    assert statements.count(snapshot, piped=True) == 4
    assert statements.count(snapshot, piped=False) == 0
    assert statements.count(_PATIENT_LOCK, piped=False) == 0


@pytest.mark.postgres
def test_a_read_ahead_waits_for_the_patients_lock_and_sees_what_its_holder_committed(
    migrated_engine: Engine,
) -> None:
    if migrated_engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite's transaction holds the only writer lock")
    sessions = make_session_factory(migrated_engine)
    holder, waiter = sessions(), sessions()
    try:
        prepare_patients(holder, ["p1"])
        record_events(holder, [_seen("p1")])
        answered: list[OutputEvaluated | None] = []

        def read_ahead() -> None:
            prepare_patients(waiter, ["p0", "p1"])
            answered.append(SqlPolicyState(waiter, patient_keys=["p1"]).last_seen("p1", "news2"))

        thread = threading.Thread(target=read_ahead)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive() and not answered  # held back by the lock the first transaction holds

        holder.commit()
        thread.join(timeout=10)
        assert answered == [_seen("p1")]  # read after the lock, so it sees the event committed under it
    finally:
        for session in (holder, waiter):
            session.rollback()
            session.close()
