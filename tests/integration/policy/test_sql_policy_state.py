"""`SqlPolicyState` answers every `PolicyState` query as `InMemoryPolicyState` does for the same event history,
on SQLite and PostgreSQL, so the live path decides exactly as the case runner and replay do."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from policy.document import bundled_policy
from policy.engine import Evaluation, RoutedPolicy
from policy.escalation import due_escalation_steps
from policy.events import AlertAcknowledged, AlertDismissed, AlertSnoozed, PolicyEvent
from policy.port import Indicator
from policy.silences import create_silence, expire_silence
from policy.stages import BAND_INDICATOR
from policy.state import InMemoryPolicyState, PolicyState
from scoring.port import RiskOutput
from store import migrate
from store.db import make_engine, make_session_factory
from store.policy_state import _SNAPSHOT_SQL, SqlPolicyState, record_events
from tests.strategies import POLICY_BANDS, policy_histories

DETERIORATION = RoutedPolicy(bundled_policy("deterioration"))
START = datetime(2026, 1, 14, 6, 50, tzinfo=UTC)
PATIENTS = ("p1", "p2")
UNITS = ("4N", "ICU1", None)


@contextmanager
def _transaction(engine: Engine) -> Iterator[Session]:
    """One transaction per example, rolled back: every example starts from an empty log."""
    session = make_session_factory(engine)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _answers(state: PolicyState, now: datetime) -> dict[str, Any]:
    """Every query of the protocol, for every patient, alert key and unit the histories use."""
    out: dict[str, Any] = {
        "open_escalations": sorted(state.open_escalations(), key=lambda e: (e.started.patient, e.started.alert_key)),
        "silences": sorted(state.silences(now), key=lambda s: s.silence_id),
    }
    for hours in (0, 1, 4, 24):
        since = now - timedelta(hours=hours)
        for unit in UNITS:
            out[f"interruptive {unit} {hours}"] = state.interruptive_count(unit, since)
        for patient in PATIENTS:
            out[f"dismissals {patient} {hours}"] = state.dismissals_since(patient, since)
    for patient in PATIENTS:
        out[f"active {patient}"] = state.active_alerts(patient, now)
        out[f"active {patient} later"] = state.active_alerts(patient, now + timedelta(hours=2))
        for key in POLICY_BANDS:
            out[f"{patient} {key}"] = (
                state.last_seen(patient, key),
                state.last_surfaced(patient, key),
                state.last_dismissal(patient, key),
                state.last_snooze(patient, key),
                state.pending_delay(patient, key),
                state.escalation(patient, key),
            )
    return out


# How a replay records a decided output's evaluations in the database: (session, output, evaluations, patient).
RecordDecision = Callable[[Session, RiskOutput, list[Evaluation], str], None]


def _replay_both(
    session: Session, history: list[Any], record_decision: RecordDecision | None = None
) -> tuple[InMemoryPolicyState, datetime]:
    """Drive the in-memory state and the database through the same history, deciding each output against both
    (a fresh SQL snapshot per step, as per hook call) and letting due escalation rungs fire as the timer would.
    A decision's events go in with record_events, or through `record_decision` (as a hook call records them)."""
    memory, now = InMemoryPolicyState(), START
    for wait, kind, out, ctx in history:
        now += timedelta(minutes=wait)
        patient = ctx.patient.key or "p1"
        events: list[PolicyEvent]
        if kind == "decide":
            on_memory = DETERIORATION.evaluate_all([out], ctx, memory, now)
            on_sql = DETERIORATION.evaluate_all([out], ctx, SqlPolicyState(session), now)
            assert on_sql == on_memory
            events = list(on_memory[0].events)
            if record_decision is not None:
                record_decision(session, out, on_sql, patient)
                # The rungs due now go in after the call's events, as below.
                due = due_escalation_steps(memory, now)
                memory.apply([*events, *due])
                record_events(session, due)
                continue
        elif kind == "dismiss":
            indicator = BAND_INDICATOR.get(out.band, Indicator.INFO)
            events = [AlertDismissed(patient, out.scorer_id, out.band, indicator, now)]
        elif kind == "snooze":
            events = [AlertSnoozed(patient, out.scorer_id, now + timedelta(minutes=wait + 30), now)]
        else:
            events = [AlertAcknowledged(patient, out.scorer_id, now)]
        events.extend(due_escalation_steps(memory, now))
        memory.apply(events)
        record_events(session, events)
    return memory, now


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=policy_histories(max_steps=15))
def test_the_database_state_decides_and_answers_as_the_in_memory_state_does(
    migrated_engine: Engine, history: list[Any]
) -> None:
    with _transaction(migrated_engine) as session:
        memory, now = _replay_both(session, history)

        assert _answers(SqlPolicyState(session), now) == _answers(memory, now)


def _silence(silence_id: str, at: datetime, hours: int, unit_id: str | None = None) -> PolicyEvent:
    return create_silence(
        silence_id=silence_id,
        match={"scorer": "news2", "band": ["medium", "high"]},
        starts_at=at,
        ends_at=at + timedelta(hours=hours),
        author="informaticist",
        comment="sensor recall on 4N",
        now=at,
        unit_id=unit_id,
    )


SILENCE_HISTORIES = {
    "running": [_silence("s1", START, 4, "4N")],
    "expired early": [_silence("s1", START, 4), None],
    "re-created after expiring": [_silence("s1", START, 4), None, _silence("s1", START + timedelta(hours=2), 3)],
    "expired before it was created": ["expire-first", _silence("s1", START, 4)],
    "two at once, one ended": [_silence("s1", START, 4), _silence("s2", START, 8, "ICU1"), "expire-s2"],
}


def _silence_events(spec: list[Any]) -> list[PolicyEvent]:
    events: list[PolicyEvent] = []
    at = START
    for item in spec:
        at += timedelta(minutes=30)
        if item is None:
            events.append(expire_silence(events[-1].silence, at))  # type: ignore[union-attr]
        elif item == "expire-first":
            events.append(expire_silence(_silence("s1", START, 4).silence, START))  # type: ignore[union-attr]
        elif item == "expire-s2":
            events.append(expire_silence(_silence("s2", START, 8).silence, at))  # type: ignore[union-attr]
        else:
            events.append(item)
    return events


@pytest.mark.parametrize("name", sorted(SILENCE_HISTORIES))
@pytest.mark.parametrize("hours_later", [0, 1, 3, 5, 9])
def test_silences_read_from_the_database_match_the_in_memory_fold(
    migrated_engine: Engine, name: str, hours_later: int
) -> None:
    events = _silence_events(SILENCE_HISTORIES[name])
    now = START + timedelta(hours=hours_later, minutes=45)
    with _transaction(migrated_engine) as session:
        record_events(session, events)

        from_database = SqlPolicyState(session).silences(now)

    assert sorted(from_database, key=lambda s: s.silence_id) == sorted(
        InMemoryPolicyState(events).silences(now), key=lambda s: s.silence_id
    )


def test_a_running_silence_comes_back_whole_from_the_database(migrated_engine: Engine) -> None:
    created = _silence("s1", START, 4, "4N")
    with _transaction(migrated_engine) as session:
        record_events(session, [created])

        (silence,) = SqlPolicyState(session).silences(START + timedelta(hours=1))

    assert silence == created.silence  # type: ignore[union-attr]


@pytest.mark.postgres
def test_a_patients_snapshot_reads_by_index_however_long_the_log(database_url: str) -> None:
    """The hook path reads one patient's state on every call: on PostgreSQL its statement must not scan the whole
    event log (every patient's history), as `id IN (subquery)` was planned before the table was analysed."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL planner property")
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO policy_events (at, kind, patient_key, alert_key, interruptive, payload)"
                    " SELECT now(), (ARRAY['OutputEvaluated', 'AlertSurfaced', 'AlertDismissed',"
                    " 'EscalationStarted'])[1 + g % 4], 'p' || (g % 2000), 'k' || (g % 3), false, '{}'"
                    " FROM generate_series(1, 20000) g"
                )
            )
        with engine.connect() as connection:
            plan = "\n".join(row[0] for row in connection.execute(text("EXPLAIN " + _SNAPSHOT_SQL[True]), {"p": "p7"}))
    finally:
        engine.dispose()

    assert "Seq Scan on policy_events" not in plan
