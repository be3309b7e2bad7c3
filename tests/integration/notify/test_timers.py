"""Durable timers on SQLite and PostgreSQL: due timers fire once, keys are idempotent, cancels hold, restarts and
dead workers lose nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from notify.port import TimerState
from notify.timer_runner import FireOutcome
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import outbox as outbox_store
from store import timers as timer_store
from store.db import make_engine
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.conftest import LEASE, RecordingHandler, runner_for

KIND = "delay-release"


def _schedule(
    engine: Engine, clock: FakeClock, key: str, *, in_seconds: float = 60, payload: dict[str, Any] | None = None
) -> bool:
    with SqlNotifyUnitOfWork(engine, clock=clock) as uow:
        created = uow.timers.schedule(KIND, key, clock() + timedelta(seconds=in_seconds), payload or {"decision": key})
        uow.commit()
    return created


def _state(engine: Engine, key: str) -> TimerState | None:
    with SqlNotifyUnitOfWork(engine) as uow:
        return timer_store.state_of(uow.session, key)


def test_a_timer_fires_once_when_due_and_never_again(migrated_engine: Engine, clock: FakeClock) -> None:
    handler = RecordingHandler()
    runner = runner_for(migrated_engine, {KIND: handler}, clock)
    _schedule(migrated_engine, clock, "decision-1:release", in_seconds=60)

    assert runner.run_batch() == 0  # not due yet
    clock.advance(60)
    assert runner.run_batch() == 1
    clock.advance(3600)
    assert runner.run_batch() == 0

    assert handler.fired == {"decision-1:release": 1}
    assert _state(migrated_engine, "decision-1:release") is TimerState.FIRED


def test_scheduling_the_same_key_twice_keeps_one_timer(migrated_engine: Engine, clock: FakeClock) -> None:
    handler = RecordingHandler()
    assert _schedule(migrated_engine, clock, "decision-2:step-1", in_seconds=10, payload={"version": 1})
    assert not _schedule(migrated_engine, clock, "decision-2:step-1", in_seconds=20, payload={"version": 2})

    clock.advance(30)
    runner_for(migrated_engine, {KIND: handler}, clock).run_batch()

    assert handler.fired == {"decision-2:step-1": 1}
    # Once fired, the key cannot be armed again: a replayed request must not repeat an escalation.
    assert not _schedule(migrated_engine, clock, "decision-2:step-1", in_seconds=10)


def test_a_cancelled_timer_never_fires(migrated_engine: Engine, clock: FakeClock) -> None:
    handler = RecordingHandler()
    _schedule(migrated_engine, clock, "decision-3:release", in_seconds=5)
    with SqlNotifyUnitOfWork(migrated_engine, clock=clock) as uow:
        assert uow.timers.cancel("decision-3:release")
        assert not uow.timers.cancel("decision-3:release")
        uow.commit()

    clock.advance(60)
    runner_for(migrated_engine, {KIND: handler}, clock).run_batch()

    assert handler.fired == {}
    assert _state(migrated_engine, "decision-3:release") is TimerState.CANCELLED


def test_a_timer_cancelled_after_its_claim_is_not_fired(migrated_engine: Engine, clock: FakeClock) -> None:
    handler = RecordingHandler()
    runner = runner_for(migrated_engine, {KIND: handler}, clock)
    _schedule(migrated_engine, clock, "decision-4:release", in_seconds=0)
    [claimed] = runner.claim()
    with SqlNotifyUnitOfWork(migrated_engine, clock=clock) as uow:
        assert uow.timers.cancel("decision-4:release")
        uow.commit()

    assert runner.fire(claimed) is FireOutcome.LOST
    assert handler.fired == {}


def test_a_timer_survives_a_restart_and_fires_afterwards(database_url: str, migrated_engine: Engine) -> None:
    clock = FakeClock()
    _schedule(migrated_engine, clock, "decision-5:release", in_seconds=120)
    migrated_engine.dispose()  # the process that armed it is gone

    restarted = make_engine(database_url)
    try:
        clock.advance(121)
        handler = RecordingHandler()
        runner_for(restarted, {KIND: handler}, clock).run_batch()
    finally:
        restarted.dispose()
    assert handler.fired == {"decision-5:release": 1}


def test_what_a_handler_writes_commits_with_the_firing(migrated_engine: Engine, clock: FakeClock) -> None:
    _schedule(migrated_engine, clock, "decision-6:step-1", in_seconds=0)
    runner_for(migrated_engine, {KIND: RecordingHandler(enqueue=True)}, clock).run_batch()

    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        message = outbox_store.find(uow.session, "timer:decision-6:step-1")
    assert message is not None
    assert message.payload == {"event": "alert", "timer": "decision-6:step-1"}


def test_a_failing_handler_leaves_no_trace_and_is_retried_then_given_up(
    migrated_engine: Engine, clock: FakeClock
) -> None:
    handler = RecordingHandler(enqueue=True, fail=True)
    runner = runner_for(migrated_engine, {KIND: handler}, clock)
    _schedule(migrated_engine, clock, "decision-7:release", in_seconds=0)

    assert runner.run_batch() == 1
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        assert outbox_store.find(uow.session, "timer:decision-7:release") is None
    assert _state(migrated_engine, "decision-7:release") is TimerState.PENDING
    assert runner.run_batch() == 0  # waiting out its backoff

    for _ in range(10):
        clock.advance(1)
        runner.run_batch()
    # FAST_BACKOFF allows four attempts; after the last the timer is marked failed rather than retried for ever.
    assert _state(migrated_engine, "decision-7:release") is TimerState.FAILED


def test_a_timer_claimed_by_a_worker_that_died_fires_once_its_lease_runs_out(
    migrated_engine: Engine, clock: FakeClock
) -> None:
    dead_handler, live_handler = RecordingHandler(), RecordingHandler()
    dead = runner_for(migrated_engine, {KIND: dead_handler}, clock, worker_id="dead")
    live = runner_for(migrated_engine, {KIND: live_handler}, clock, worker_id="live")
    _schedule(migrated_engine, clock, "decision-8:release", in_seconds=0)

    [abandoned] = dead.claim()  # and then the process is killed
    assert live.run_batch() == 0  # still leased
    clock.advance(LEASE.total_seconds() + 1)
    assert live.run_batch() == 1

    # The dead worker coming back late must not fire it a second time.
    assert dead.fire(abandoned) is FireOutcome.LOST
    assert dead_handler.fired == {}
    assert live_handler.fired == {"decision-8:release": 1}


def test_stopping_releases_claimed_timers_that_were_not_started(migrated_engine: Engine, clock: FakeClock) -> None:
    handler = RecordingHandler()
    for n in range(5):
        _schedule(migrated_engine, clock, f"decision-9:{n}", in_seconds=0)
    runner = runner_for(migrated_engine, {KIND: handler}, clock, worker_id="stopping")
    claimed = runner.claim()
    runner.fire(claimed[0])
    assert runner.release(claimed[1:]) == 4

    # Released at once, not after the lease: another worker takes them straight away, first attempt uncounted.
    other = runner_for(migrated_engine, {KIND: handler}, clock, worker_id="other")
    assert [t.attempts for t in other.claim()] == [1, 1, 1, 1]
