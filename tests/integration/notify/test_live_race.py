"""Two workers, each with its own engine, racing over the ladders of many escalated patients: every rung fires once,
reaches its role once and is recorded once (SKIP LOCKED and the per-patient lock on PostgreSQL)."""

from __future__ import annotations

import time
from collections import Counter

import httpx
from sqlalchemy import Engine

from notify.port import TimerState
from notify.unit_of_work import SqlNotifyUnitOfWork
from notify.worker import start_in_background
from store import timers as timer_store
from store.db import make_engine
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.live import LivePath, events_of, live_worker, settings_for, timer_audits
from tests.integration.notify.receivers import WebhookReceiver

PATIENTS = 20
RUNGS = 2  # the charge nurse and the rapid response team; the nurse's rung is the card


def test_two_workers_racing_over_live_ladders_fire_every_rung_exactly_once(
    database_url: str, migrated_engine: Engine, clock: FakeClock, receiver: WebhookReceiver
) -> None:
    live = LivePath(migrated_engine, clock)
    for n in range(PATIENTS):
        assert live.call(f"p-race-{n}")["cards"]
    clock.advance(31 * 60)
    settings = settings_for(receiver.url, batch_size=3)
    engines = [make_engine(database_url) for _ in range(2)]
    clients = [httpx.Client(timeout=5.0) for _ in range(2)]
    workers = [
        start_in_background(live_worker(engine, settings, clock, http, worker_id=f"racer-{n}"))
        for n, (engine, http) in enumerate(zip(engines, clients, strict=True))
    ]
    try:
        deadline = time.monotonic() + 120
        while len(receiver.processed()) < PATIENTS * RUNGS and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for background in workers:
            assert background.stop(timeout=10)
        for http in clients:
            http.close()
        for engine in engines:
            engine.dispose()

    assert len(receiver.processed()) == PATIENTS * RUNGS
    assert set(receiver.seen().values()) == {1}
    reached = Counter((e["patient"], e["index"]) for e in events_of(migrated_engine, "EscalationStepReached"))
    # No rung recorded twice, and every ladder reached its top. (A rung fired after a later one of the same ladder,
    # by the other worker, finds it reached already and records no event: the state counts the highest rung.)
    assert set(reached.values()) == {1}
    top = {patient: max(i for p, i in reached if p == patient) for patient, _ in reached}
    assert len(top) == PATIENTS and set(top.values()) == {RUNGS}
    audits = timer_audits(migrated_engine)
    assert len(audits) == PATIENTS * RUNGS and {outcome for _, outcome, _ in audits} == {"notified"}
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        assert timer_store.count_by_state(uow.session)[TimerState.FIRED] == PATIENTS * RUNGS
