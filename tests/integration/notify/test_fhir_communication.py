"""The FHIR channel against a local FHIR stand-in: a valid R4 Communication, posted as a conditional create on the
idempotency identifier with the bearer token, created once however often it is sent."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import Engine

from notify.channels.fhir import communication_message
from notify.port import DeliveryOutcome, OutboxState
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import outbox as outbox_store
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.conftest import channels_for, dispatcher_for, fast_settings
from tests.integration.notify.receivers import FhirCommunicationServer

KEY = "decision-41:escalation-1"


def _enqueue(engine: Engine, clock: FakeClock) -> None:
    message = communication_message(
        target="ehr",
        idempotency_key=KEY,
        patient_id="pat-7",
        recipient_role="Rapid response team",
        text="NEWS2 7 (high): review within 30 minutes",
        encounter_id="enc-3",
        priority="urgent",
    )
    with SqlNotifyUnitOfWork(engine, clock=clock) as uow:
        uow.outbox.enqueue(message)
        uow.commit()


def test_an_escalation_is_posted_as_a_conditional_create_of_one_communication(
    migrated_engine: Engine, communication_server: FhirCommunicationServer, clock: FakeClock, http_client: httpx.Client
) -> None:
    settings = fast_settings("http://127.0.0.1:9/hook", fhir_url=communication_server.base_url)
    channels = channels_for(settings, clock, http_client)
    _enqueue(migrated_engine, clock)

    dispatcher_for(migrated_engine, channels, clock).run_batch()

    [arrival] = communication_server.arrivals
    assert arrival.status == 201
    assert arrival.headers["if-none-exist"] == f"identifier=urn:cds-control-plane:outbox|{KEY.replace(':', '%3A')}"
    assert arrival.headers["content-type"] == "application/fhir+json"
    [resource] = communication_server.created.values()
    assert resource == json.loads(arrival.body)
    assert resource["status"] == "completed"
    assert resource["identifier"] == [{"system": "urn:cds-control-plane:outbox", "value": KEY}]
    assert resource["category"][0]["coding"][0]["code"] == "alert"
    assert resource["subject"] == {"reference": "Patient/pat-7"}
    assert resource["encounter"] == {"reference": "Encounter/enc-3"}
    assert resource["recipient"] == [{"type": "PractitionerRole", "display": "Rapid response team"}]
    assert resource["payload"] == [{"contentString": "NEWS2 7 (high): review within 30 minutes"}]
    assert resource["priority"] == "urgent"
    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        item = outbox_store.find(uow.session, KEY)
    assert item is not None and item.state is OutboxState.DELIVERED

    # A repeat (a worker that died after sending) is matched by the server, not created again.
    assert channels["fhir-communication"].deliver(item).outcome is DeliveryOutcome.DELIVERED
    assert [a.status for a in communication_server.arrivals] == [201, 200]
    assert len(communication_server.created) == 1


def test_a_refused_token_dead_letters_the_communication(
    migrated_engine: Engine, communication_server: FhirCommunicationServer, clock: FakeClock, http_client: httpx.Client
) -> None:
    communication_server.token = "rotated-token"
    settings = fast_settings("http://127.0.0.1:9/hook", fhir_url=communication_server.base_url)
    _enqueue(migrated_engine, clock)

    dispatcher_for(migrated_engine, channels_for(settings, clock, http_client), clock).run_batch()

    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        item = outbox_store.find(uow.session, KEY)
    assert item is not None
    assert (item.state, item.last_error) == (OutboxState.DEAD, "http-401")
    assert communication_server.created == {}
