"""Fixtures for the notify integration tests: local receivers, fast settings, and runners wired to a database."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from notify.backoff import Backoff
from notify.channels.fhir import FhirCommunicationChannel
from notify.channels.http import make_client
from notify.channels.webhook import WebhookChannel
from notify.dispatcher import OutboxDispatcher
from notify.port import Channel, ChannelName, Clock, NotifyUnitOfWork, OutboundMessage, Timer, TimerHandler
from notify.settings import FhirTarget, NotifySettings, WebhookTarget
from notify.timer_runner import TimerRunner
from notify.unit_of_work import SqlNotifyUnitOfWork
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.receivers import FhirCommunicationServer, WebhookReceiver

SECRET = "receiver-shared-secret"
FHIR_TOKEN = "fhir-test-token"
LEASE = timedelta(seconds=30)
# Milliseconds, so the tests that run the real loop finish fast.
FAST_BACKOFF = Backoff(base=timedelta(milliseconds=5), cap=timedelta(milliseconds=40), max_attempts=4)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def communication_server() -> Iterator[FhirCommunicationServer]:
    server = FhirCommunicationServer(FHIR_TOKEN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fast_settings(webhook_url: str, fhir_url: str = "http://127.0.0.1:9/fhir", **changes: object) -> NotifySettings:
    values: dict[str, object] = {
        "webhooks": {"ops": WebhookTarget(url=webhook_url, secret=SecretStr(SECRET))},
        "fhir_servers": {"ehr": FhirTarget(base_url=fhir_url, bearer_token=SecretStr(FHIR_TOKEN))},
        "backoff_base_seconds": 0.005,
        "backoff_cap_seconds": 0.04,
        "max_attempts": 4,
        "poll_interval_seconds": 0.01,
        "lease_seconds": 5.0,
        "connect_timeout_seconds": 0.5,
        "read_timeout_seconds": 1.0,
    }
    values.update(changes)
    return NotifySettings.model_validate(values)


def webhook(key: str, **payload: object) -> OutboundMessage:
    return OutboundMessage(ChannelName.WEBHOOK, "ops", {"event": "alert", **payload}, key)


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    client = make_client(fast_settings("http://127.0.0.1:9/hook"))
    try:
        yield client
    finally:
        client.close()


def channels_for(settings: NotifySettings, clock: Clock, client: httpx.Client) -> dict[str, Channel]:
    return {
        ChannelName.WEBHOOK: WebhookChannel(settings.webhooks, client, clock=clock),
        ChannelName.FHIR_COMMUNICATION: FhirCommunicationChannel(settings.fhir_servers, client, clock=clock),
    }


def dispatcher_for(
    engine: Engine,
    channels: dict[str, Channel],
    clock: Clock,
    *,
    worker_id: str = "worker-a",
    backoff: Backoff = FAST_BACKOFF,
    lease: timedelta = LEASE,
    batch_size: int = 20,
) -> OutboxDispatcher:
    return OutboxDispatcher(
        lambda: SqlNotifyUnitOfWork(engine, clock=clock),
        channels,
        worker_id=worker_id,
        lease=lease,
        backoff=backoff,
        batch_size=batch_size,
        clock=clock,
    )


def runner_for(
    engine: Engine,
    handlers: dict[str, TimerHandler],
    clock: Clock,
    *,
    worker_id: str = "worker-a",
    backoff: Backoff = FAST_BACKOFF,
    lease: timedelta = LEASE,
    batch_size: int = 20,
) -> TimerRunner:
    return TimerRunner(
        lambda: SqlNotifyUnitOfWork(engine, clock=clock),
        handlers,
        worker_id=worker_id,
        lease=lease,
        backoff=backoff,
        batch_size=batch_size,
        clock=clock,
    )


class RecordingHandler:
    """Counts the timers it fired; optionally enqueues a webhook per timer, or fails on purpose."""

    def __init__(self, *, enqueue: bool = False, fail: bool = False) -> None:
        self.fired: Counter[str] = Counter()
        self._enqueue = enqueue
        self.fail = fail
        self._lock = threading.Lock()

    def fire(self, timer: Timer, uow: NotifyUnitOfWork) -> None:
        if self.fail:
            raise RuntimeError("handler failed on purpose")
        if self._enqueue:
            uow.outbox.enqueue(webhook(f"timer:{timer.key}", timer=timer.key))
        with self._lock:
            self.fired[timer.key] += 1
