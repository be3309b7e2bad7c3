"""Escalation ladders on the live path: a hook call that escalates arms one durable timer per rung still to come, in
its own transaction; each rung reaches its role once by signed webhook, unless the alert was answered first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine, select

from feedback.cds_hooks import parse_feedback, record_feedback
from notify.port import ChannelName, TimerState
from notify.settings import ChannelRoute, FhirTarget
from notify.unit_of_work import SqlNotifyUnitOfWork
from policy.events import AlertAcknowledged, EscalationStarted
from policy.port import EscalationStep
from store import timers as timer_store
from store.policy_state import SqlPolicyUnitOfWork
from store.tables import TimerRow
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.conftest import FHIR_TOKEN
from tests.integration.notify.live import (
    LOW,
    LivePath,
    drain,
    events_of,
    live_worker,
    patient_key,
    settings_for,
    timer_audits,
)
from tests.integration.notify.receivers import FhirCommunicationServer, WebhookReceiver


@pytest.fixture
def live(migrated_engine: Engine, clock: FakeClock) -> LivePath:
    return LivePath(migrated_engine, clock)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


def _ladder_timers(engine: Engine) -> list[tuple[str, str, TimerState]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(TimerRow.key, TimerRow.due_at, TimerRow.state).where(TimerRow.kind == "escalation-step")
        ).all()
    return sorted((row.key.rsplit(":", 1)[1], row.due_at.isoformat(), TimerState(row.state)) for row in rows)


def test_a_hook_call_that_escalates_arms_one_timer_per_rung_still_to_come(live: LivePath, clock: FakeClock) -> None:
    start = clock()
    answer = live.call("p-ladder")
    again = live.call("p-ladder")

    assert [card["indicator"] for card in answer["cards"]] == ["critical"]
    assert again["cards"] == [], "the second call is a duplicate and starts no second ladder"
    # Rung 0 (the nurse) is the card itself; the charge nurse at +15 min and the rapid response team at +30 min.
    assert _ladder_timers(live.engine) == [
        ("1", (start + timedelta(minutes=15)).isoformat(), TimerState.PENDING),
        ("2", (start + timedelta(minutes=30)).isoformat(), TimerState.PENDING),
    ]


def test_the_charge_nurse_rung_comes_due_on_the_clock_and_is_delivered_once_by_signed_webhook(
    live: LivePath, clock: FakeClock, receiver: WebhookReceiver, client: httpx.Client
) -> None:
    live.call("p-climb")
    worker = live_worker(live.engine, settings_for(receiver.url), clock, client)
    drain(worker)
    assert receiver.arrivals == [], "nothing is due before 15 minutes"

    clock.advance(15 * 60)
    drain(worker)
    drain(worker)

    [arrival] = receiver.arrivals
    assert arrival.signed and arrival.status == 200
    body = json.loads(arrival.body)
    assert (body["event"], body["role"], body["step"], body["patient"]) == (
        "escalation-step",
        "charge-nurse",
        1,
        patient_key("p-climb"),
    )
    assert [e["index"] for e in events_of(live.engine, "EscalationStepReached")] == [1]
    assert [outcome for _, outcome, _ in timer_audits(live.engine)] == ["notified"]

    clock.advance(15 * 60)
    drain(worker)

    assert [json.loads(a.body)["role"] for a in receiver.arrivals] == ["charge-nurse", "rapid-response"]
    assert set(receiver.seen().values()) == {1}


def test_an_acknowledgement_before_the_charge_nurse_rung_stops_the_ladder_and_records_why(
    live: LivePath, clock: FakeClock, receiver: WebhookReceiver, client: httpx.Client
) -> None:
    live.call("p-ack")
    clock.advance(5 * 60)
    # What an accepted CDS Hooks suggestion (feedback.cds_hooks) and the acknowledge action append.
    with SqlPolicyUnitOfWork(live.engine) as uow:
        uow.record_events([AlertAcknowledged(patient_key("p-ack"), "news2", clock())])
        uow.commit()

    clock.advance(30 * 60)
    drain(live_worker(live.engine, settings_for(receiver.url), clock, client))

    assert receiver.arrivals == []
    assert events_of(live.engine, "EscalationStepReached") == []
    assert [outcome for _, outcome, _ in timer_audits(live.engine)] == ["acknowledged", "acknowledged"]
    with SqlNotifyUnitOfWork(live.engine) as uow:
        assert timer_store.count_by_state(uow.session)[TimerState.FIRED] == 2


def test_an_overridden_card_before_the_charge_nurse_rung_stops_the_ladder_as_dismissed(
    live: LivePath, clock: FakeClock, receiver: WebhookReceiver, client: httpx.Client
) -> None:
    answer = live.call("p-override")
    clock.advance(10 * 60)
    feedback = parse_feedback(
        {"feedback": [{"card": answer["cards"][0]["uuid"], "outcome": "overridden", "outcomeTimestamp": clock()}]}
    )
    record_feedback(
        feedback,
        service_id="deterioration-news2",
        unit_of_work=lambda: SqlPolicyUnitOfWork(live.engine),
        actor="t",
        now=clock(),
    )

    clock.advance(10 * 60)
    drain(live_worker(live.engine, settings_for(receiver.url), clock, client))

    assert receiver.arrivals == []
    assert [outcome for _, outcome, _ in timer_audits(live.engine)] == ["dismissed"]


def test_a_rung_stands_down_when_the_alert_resolved_before_it_came_due(
    live: LivePath, clock: FakeClock, receiver: WebhookReceiver, client: httpx.Client
) -> None:
    live.call("p-better")
    clock.advance(10 * 60)
    live.call("p-better", LOW)

    clock.advance(10 * 60)
    drain(live_worker(live.engine, settings_for(receiver.url), clock, client))

    assert receiver.arrivals == []
    assert [outcome for _, outcome, _ in timer_audits(live.engine)] == ["resolved"]


def test_a_rung_whose_channel_has_no_route_is_reached_and_audited_but_sends_nothing(
    live: LivePath, clock: FakeClock, receiver: WebhookReceiver, client: httpx.Client
) -> None:
    live.call("p-unrouted")
    clock.advance(15 * 60)

    drain(live_worker(live.engine, settings_for(receiver.url, routes={}), clock, client))

    assert receiver.arrivals == []
    assert [e["index"] for e in events_of(live.engine, "EscalationStepReached")] == [1]
    assert [outcome for _, outcome, _ in timer_audits(live.engine)] == ["no-route"]


def test_a_rung_routed_to_a_fhir_server_posts_one_communication_about_the_ehr_patient(
    live: LivePath,
    clock: FakeClock,
    receiver: WebhookReceiver,
    communication_server: FhirCommunicationServer,
    client: httpx.Client,
) -> None:
    # The store keeps only the pseudonymous patient key; the hook call hands the EHR's Patient id to the timer.
    live.call("p-fhir")
    clock.advance(15 * 60)
    settings = settings_for(
        receiver.url,
        fhir_servers={
            "ehr": FhirTarget(base_url=communication_server.base_url, bearer_token=SecretStr(FHIR_TOKEN)),
        },
        routes={"pager": ChannelRoute(channel=ChannelName.FHIR_COMMUNICATION, target="ehr")},
    )

    drain(live_worker(live.engine, settings, clock, client))
    drain(live_worker(live.engine, settings, clock, client))

    assert [outcome for _, outcome, _ in timer_audits(live.engine)] == ["notified"]
    communications = list(communication_server.created.values())
    assert len(communications) == 1
    assert communications[0]["subject"] == {"reference": "Patient/p-fhir"}
    assert receiver.arrivals == []
    # The Patient id travels in the timer and the message, never into the audit record.
    assert "p-fhir" not in json.dumps(timer_audits(live.engine), default=str)


def test_a_route_to_a_target_that_is_not_configured_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="pager"):
        settings_for("http://127.0.0.1:9/hook", routes={"pager": {"channel": "webhook", "target": "nowhere"}})


def test_a_ladder_and_its_timers_are_committed_or_rolled_back_together(live: LivePath, clock: FakeClock) -> None:
    ladder = (EscalationStep("nurse", "ehr-inbox"), EscalationStep("charge-nurse", "pager", 15))
    started = EscalationStarted(patient_key("p-rollback"), "news2", "high", ladder, clock())
    with SqlPolicyUnitOfWork(live.engine) as uow:
        uow.record_events([started])
        uow.rollback()
    assert _ladder_timers(live.engine) == []

    with SqlPolicyUnitOfWork(live.engine) as uow:
        uow.record_events([started])
        uow.commit()
    assert [rung for rung, _, _ in _ladder_timers(live.engine)] == ["1"]
