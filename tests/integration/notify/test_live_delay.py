"""Holds on the live path: a held alert arms a durable timer that survives a restart and, once due, tells someone
once; the release itself stays with the next hook call, so that call still surfaces the card."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine

from notify.port import TimerState
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import timers as timer_store
from store.db import make_engine
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.live import (
    MEDIUM,
    LivePath,
    drain,
    events_of,
    live_worker,
    patient_key,
    settings_for,
    timer_audits,
)
from tests.integration.notify.receivers import WebhookReceiver

# Inside the deterioration policy's day handover (07:00-07:30 Europe/London, GMT in March): a warning is held.
IN_HANDOVER = datetime(2026, 3, 1, 7, 10, tzinfo=UTC)
AFTER_HANDOVER = datetime(2026, 3, 1, 7, 31, tzinfo=UTC)


@pytest.fixture
def handover_clock() -> FakeClock:
    return FakeClock(IN_HANDOVER)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


def _delay_timer_states(engine: Engine) -> dict[TimerState, int]:
    with SqlNotifyUnitOfWork(engine) as uow:
        return timer_store.count_by_state(uow.session)


def test_a_hold_fires_once_after_a_restart_and_the_next_hook_call_still_surfaces_the_card(
    database_url: str,
    migrated_engine: Engine,
    handover_clock: FakeClock,
    receiver: WebhookReceiver,
    client: httpx.Client,
) -> None:
    before = make_engine(database_url)
    held = LivePath(before, handover_clock).call("p-held", MEDIUM)
    assert held["cards"] == []
    assert _delay_timer_states(migrated_engine)[TimerState.PENDING] == 1
    # The service goes away with its worker; a new one starts from the same database after the hold ran out.
    before.dispose()
    handover_clock.set(AFTER_HANDOVER)
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        settings = settings_for(receiver.url)
        for n, engine in enumerate(engines):
            drain(live_worker(engine, settings, handover_clock, client, worker_id=f"restarted-{n}"))
            drain(live_worker(engine, settings, handover_clock, client, worker_id=f"restarted-{n}"))

        [arrival] = receiver.arrivals
        body = json.loads(arrival.body)
        assert arrival.signed
        assert (body["event"], body["patient"], body["reason"]) == ("delay-due", patient_key("p-held"), "time-window")
        assert [(kind, outcome) for kind, outcome, _ in timer_audits(migrated_engine)] == [("delay-due", "notified")]
        assert _delay_timer_states(migrated_engine)[TimerState.FIRED] == 1
        # The timer released nothing: the next hook call does, and shows the held card.
        assert events_of(migrated_engine, "DelayReleased") == []
        released = LivePath(engines[0], handover_clock).call("p-held", MEDIUM)
    finally:
        for engine in engines:
            engine.dispose()

    assert [card["indicator"] for card in released["cards"]] == ["warning"]
    assert [e["reason"] for e in events_of(migrated_engine, "DelayReleased")] == ["delay-released"]


def test_a_hold_a_hook_call_already_released_stands_down_and_records_why(
    migrated_engine: Engine, handover_clock: FakeClock, receiver: WebhookReceiver, client: httpx.Client
) -> None:
    live = LivePath(migrated_engine, handover_clock)
    live.call("p-seen", MEDIUM)
    handover_clock.set(AFTER_HANDOVER)
    assert live.call("p-seen", MEDIUM)["cards"], "the next call after the hold ran out surfaces the card"

    drain(live_worker(migrated_engine, settings_for(receiver.url), handover_clock, client))

    assert receiver.arrivals == []
    assert [(kind, outcome) for kind, outcome, _ in timer_audits(migrated_engine)] == [("delay-due", "not-pending")]
