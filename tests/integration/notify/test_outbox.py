"""The outbox against a real local webhook receiver: signed delivery, retries with growing backoff, dead letters an
operator can retry, and take-over of a message whose worker died mid-delivery."""

from __future__ import annotations

import itertools
from datetime import timedelta

import httpx
from sqlalchemy import Engine

from notify.dead_letters import list_dead_letters, retry_dead_letter
from notify.port import DeliveryOutcome, NotifyAuditKind, OutboxItem, OutboxState
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import outbox as outbox_store
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.conftest import LEASE, channels_for, dispatcher_for, fast_settings, webhook
from tests.integration.notify.receivers import WebhookReceiver


def _enqueue(engine: Engine, clock: FakeClock, *keys: str) -> None:
    with SqlNotifyUnitOfWork(engine, clock=clock) as uow:
        for key in keys:
            uow.outbox.enqueue(webhook(key))
        uow.commit()


def _item(engine: Engine, key: str) -> OutboxItem:
    with SqlNotifyUnitOfWork(engine) as uow:
        item = outbox_store.find(uow.session, key)
    assert item is not None
    return item


def test_enqueueing_the_same_idempotency_key_twice_stores_one_message(migrated_engine: Engine) -> None:
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        assert uow.outbox.enqueue(webhook("alert-1", n=1))
        assert not uow.outbox.enqueue(webhook("alert-1", n=2))
        uow.commit()
    assert _item(migrated_engine, "alert-1").payload == {"event": "alert", "n": 1}


def test_a_message_enqueued_in_a_rolled_back_transaction_is_never_sent(migrated_engine: Engine) -> None:
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        uow.outbox.enqueue(webhook("alert-rolled-back"))
        uow.rollback()
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        assert outbox_store.find(uow.session, "alert-rolled-back") is None


def test_a_message_arrives_signed_with_its_idempotency_key(
    migrated_engine: Engine, receiver: WebhookReceiver, clock: FakeClock, http_client: httpx.Client
) -> None:
    settings = fast_settings(receiver.url)
    _enqueue(migrated_engine, clock, "alert-2")

    assert dispatcher_for(migrated_engine, channels_for(settings, clock, http_client), clock).run_batch() == 1

    [arrival] = receiver.arrivals
    assert arrival.signed
    assert arrival.key == "alert-2"
    assert arrival.headers["x-cds-timestamp"] == str(int(clock().timestamp()))
    item = _item(migrated_engine, "alert-2")
    assert item.state is OutboxState.DELIVERED
    assert item.delivered_at == clock()


def test_a_receiver_answering_503_for_a_while_is_retried_with_growing_delays_until_it_succeeds(
    migrated_engine: Engine, receiver: WebhookReceiver, clock: FakeClock, http_client: httpx.Client
) -> None:
    settings = fast_settings(receiver.url, max_attempts=6)
    receiver.respond(503, 503, 503, 503, then=200)
    dispatcher = dispatcher_for(
        migrated_engine, channels_for(settings, clock, http_client), clock, backoff=settings.backoff
    )
    _enqueue(migrated_engine, clock, "alert-3")

    waits = []
    while dispatcher.run_batch() and (item := _item(migrated_engine, "alert-3")).state is OutboxState.PENDING:
        assert item.last_error == "http-503"
        waits.append(item.next_attempt_at - clock())
        assert dispatcher.run_batch() == 0  # nothing is sent before its time
        clock.set(item.next_attempt_at)

    assert _item(migrated_engine, "alert-3").state is OutboxState.DELIVERED
    assert [a.status for a in receiver.arrivals] == [503, 503, 503, 503, 200]
    assert len(waits) == 4
    assert all(earlier <= later for earlier, later in itertools.pairwise(waits))
    assert waits[-1] > waits[0]
    assert waits[-1] <= timedelta(seconds=settings.backoff_cap_seconds)


def test_a_receiver_that_stays_down_sends_the_message_to_the_dead_letters_and_an_operator_retry_delivers_it(
    migrated_engine: Engine, receiver: WebhookReceiver, clock: FakeClock, http_client: httpx.Client
) -> None:
    settings = fast_settings(receiver.url)
    receiver.respond(then=503)
    dispatcher = dispatcher_for(
        migrated_engine, channels_for(settings, clock, http_client), clock, backoff=settings.backoff
    )
    _enqueue(migrated_engine, clock, "alert-4")
    factory = lambda: SqlNotifyUnitOfWork(migrated_engine, clock=clock)  # noqa: E731 -- a one-line factory

    for _ in range(10):
        dispatcher.run_batch()
        clock.advance(1)

    assert len(receiver.arrivals) == settings.max_attempts
    [dead] = list_dead_letters(factory)
    assert (dead.idempotency_key, dead.attempts, dead.last_error) == ("alert-4", 4, "http-503")

    receiver.respond(then=200)
    retried = retry_dead_letter(factory, dead.id, operator="operator:alice", clock=clock)
    assert retried is not None and retried.attempts == 0
    assert retry_dead_letter(factory, dead.id, operator="operator:alice", clock=clock) is None  # not dead now
    dispatcher.run_batch()

    assert _item(migrated_engine, "alert-4").state is OutboxState.DELIVERED
    assert list_dead_letters(factory) == []
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        records = uow.repo.audit_records()
        assert uow.repo.verify_audit_chain().ok
    assert [(r.kind, r.actor, r.subject) for r in records] == [
        (NotifyAuditKind.OUTBOX_DEAD_LETTERED, "notify-worker", f"outbox:{dead.id}"),
        (NotifyAuditKind.OUTBOX_RETRIED, "operator:alice", f"outbox:{dead.id}"),
    ]


def test_a_permanent_client_error_dead_letters_the_message_at_once(
    migrated_engine: Engine, receiver: WebhookReceiver, clock: FakeClock, http_client: httpx.Client
) -> None:
    receiver.respond(422)
    dispatcher = dispatcher_for(migrated_engine, channels_for(fast_settings(receiver.url), clock, http_client), clock)
    _enqueue(migrated_engine, clock, "alert-5")

    dispatcher.run_batch()

    item = _item(migrated_engine, "alert-5")
    assert (item.state, item.attempts, item.last_error) == (OutboxState.DEAD, 1, "http-422")


def test_rate_limiting_and_refused_connections_are_retried(
    migrated_engine: Engine, receiver: WebhookReceiver, clock: FakeClock, http_client: httpx.Client
) -> None:
    receiver.respond(429)
    dispatcher = dispatcher_for(migrated_engine, channels_for(fast_settings(receiver.url), clock, http_client), clock)
    _enqueue(migrated_engine, clock, "alert-6")
    dispatcher.run_batch()
    assert _item(migrated_engine, "alert-6").last_error == "http-429"

    receiver.stop()
    clock.advance(1)
    dispatcher.run_batch()
    item = _item(migrated_engine, "alert-6")
    assert (item.state, item.attempts, item.last_error) == (OutboxState.PENDING, 2, "ConnectError")


def test_a_message_whose_worker_died_mid_delivery_is_delivered_after_the_lease_and_counted_once(
    migrated_engine: Engine, receiver: WebhookReceiver, clock: FakeClock, http_client: httpx.Client
) -> None:
    channels = channels_for(fast_settings(receiver.url), clock, http_client)
    dead = dispatcher_for(migrated_engine, channels, clock, worker_id="dead")
    live = dispatcher_for(migrated_engine, channels, clock, worker_id="live")
    _enqueue(migrated_engine, clock, "alert-7")

    [in_hand] = dead.claim()
    # The dead worker's request reached the receiver, but the worker was killed before recording it.
    assert channels["webhook"].deliver(in_hand).outcome is DeliveryOutcome.DELIVERED
    assert live.run_batch() == 0  # still leased
    clock.advance(LEASE.total_seconds() + 1)
    assert live.run_batch() == 1
    # A late outcome from the old claim changes nothing: the row is no longer its worker's.
    assert dead.deliver(in_hand) is DeliveryOutcome.DELIVERED

    assert receiver.seen()["alert-7"] <= 3
    assert receiver.processed() == {"alert-7"}
    item = _item(migrated_engine, "alert-7")
    assert (item.state, item.attempts) == (OutboxState.DELIVERED, 2)
