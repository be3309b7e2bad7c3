"""Two workers, each with its own engine, racing over the same due timers and messages: each timer fires once and
each message arrives once (SKIP LOCKED on PostgreSQL, the writer lock on SQLite)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine

from notify.port import OutboxState, TimerState, system_clock
from notify.unit_of_work import SqlNotifyUnitOfWork
from notify.worker import build_worker, start_in_background
from store import outbox as outbox_store
from store import timers as timer_store
from store.db import make_engine
from tests.integration.notify.conftest import RecordingHandler, channels_for, fast_settings, webhook
from tests.integration.notify.receivers import WebhookReceiver

COUNT = 200
KIND = "escalation-step"


def test_two_workers_fire_every_timer_and_deliver_every_message_exactly_once(
    database_url: str, migrated_engine: Engine, receiver: WebhookReceiver
) -> None:
    now = datetime.now(UTC)
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        for n in range(COUNT):
            uow.timers.schedule(KIND, f"decision-{n}:step-1", now, {"n": n})
            uow.outbox.enqueue(webhook(f"direct-{n}", n=n))
        uow.commit()
    settings = fast_settings(receiver.url, batch_size=10, lease_seconds=30.0)
    handler = RecordingHandler(enqueue=True)
    engines = [make_engine(database_url) for _ in range(2)]
    clients = [httpx.Client(timeout=5.0) for _ in range(2)]
    workers = [
        start_in_background(
            build_worker(engine, settings, {KIND: handler}, channels=channels_for(settings, system_clock, client))
        )
        for engine, client in zip(engines, clients, strict=True)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(receiver.processed()) < 2 * COUNT and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for background in workers:
            assert background.stop(timeout=10)
        for client in clients:
            client.close()
        for engine in engines:
            engine.dispose()

    expected = {f"direct-{n}" for n in range(COUNT)} | {f"timer:decision-{n}:step-1" for n in range(COUNT)}
    assert receiver.processed() == expected
    assert set(receiver.seen().values()) == {1}
    assert len(handler.fired) == COUNT and set(handler.fired.values()) == {1}
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        assert timer_store.count_by_state(uow.session)[TimerState.FIRED] == COUNT
        assert outbox_store.count_by_state(uow.session)[OutboxState.DELIVERED] == 2 * COUNT
