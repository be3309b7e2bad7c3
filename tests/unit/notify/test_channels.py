"""Channels against a mock transport: what each HTTP answer or fault means, and what goes on the wire."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from notify.channels.fhir import FhirCommunicationChannel, communication_message, if_none_exist
from notify.channels.webhook import WebhookChannel
from notify.port import DeliveryOutcome, OutboxItem, OutboxState
from notify.settings import FhirTarget, WebhookTarget
from notify.signing import verify_signature

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
TARGETS = {"ops": WebhookTarget(url="https://receiver.test/hook", secret="s3cret")}  # type: ignore[arg-type]
FHIR = {"ehr": FhirTarget(base_url="https://ehr.test/fhir/", bearer_token="tok")}  # type: ignore[arg-type]


def _item(
    channel: str = "webhook", target: str = "ops", payload: dict[str, Any] | None = None, key: str = "k-1"
) -> OutboxItem:
    return OutboxItem(
        id=1,
        channel=channel,
        target=target,
        payload={"event": "alert"} if payload is None else payload,
        idempotency_key=key,
        state=OutboxState.DELIVERING,
        attempts=1,
        next_attempt_at=NOW,
        last_error=None,
        created_at=NOW,
        delivered_at=None,
    )


def _client(answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.DELIVERED),
        (204, DeliveryOutcome.DELIVERED),
        (301, DeliveryOutcome.PERMANENT),
        (400, DeliveryOutcome.PERMANENT),
        (404, DeliveryOutcome.PERMANENT),
        (408, DeliveryOutcome.RETRY),
        (429, DeliveryOutcome.RETRY),
        (500, DeliveryOutcome.RETRY),
        (503, DeliveryOutcome.RETRY),
    ],
)
def test_each_answer_maps_to_delivered_retry_or_dead(status: int, outcome: DeliveryOutcome) -> None:
    with _client(lambda _: httpx.Response(status), []) as client:
        result = WebhookChannel(TARGETS, client, clock=lambda: NOW).deliver(_item())
    assert result.outcome is outcome
    assert result.error == (None if outcome is DeliveryOutcome.DELIVERED else f"http-{status}")


@pytest.mark.parametrize("fault", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_transport_faults_are_retried_and_named_by_type_only(fault: type[httpx.TransportError]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise fault("detail with https://receiver.test/hook?patient=123", request=request)

    with _client(fail, []) as client:
        result = WebhookChannel(TARGETS, client, clock=lambda: NOW).deliver(_item())
    assert (result.outcome, result.error) == (DeliveryOutcome.RETRY, fault.__name__)


def test_a_webhook_carries_a_verifiable_signature_timestamp_and_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    with _client(lambda _: httpx.Response(200), seen) as client:
        WebhookChannel(TARGETS, client, clock=lambda: NOW).deliver(_item(payload={"b": 1, "a": "é"}, key="dec-9"))
    [request] = seen
    timestamp = request.headers["X-CDS-Timestamp"]
    assert timestamp == str(int(NOW.timestamp()))
    assert request.headers["Idempotency-Key"] == "dec-9"
    assert verify_signature("s3cret", timestamp, request.content, request.headers["X-CDS-Signature"])
    assert json.loads(request.content) == {"a": "é", "b": 1}


def test_an_unknown_target_is_dead_without_a_request() -> None:
    seen: list[httpx.Request] = []
    with _client(lambda _: httpx.Response(200), seen) as client:
        result = WebhookChannel(TARGETS, client).deliver(_item(target="removed"))
        fhir_result = FhirCommunicationChannel(FHIR, client).deliver(_item("fhir-communication", "removed"))
    assert (result.outcome, result.error) == (DeliveryOutcome.PERMANENT, "unknown-target")
    assert fhir_result.outcome is DeliveryOutcome.PERMANENT
    assert seen == []


def test_a_communication_is_a_conditional_create_with_the_bearer_token() -> None:
    message = communication_message(
        target="ehr", idempotency_key="a&b=c", patient_id="p1", recipient_role="Charge nurse", text="Review now"
    )
    item = _item("fhir-communication", "ehr", dict(message.payload), message.idempotency_key)
    seen: list[httpx.Request] = []
    with _client(lambda _: httpx.Response(201), seen) as client:
        result = FhirCommunicationChannel(FHIR, client, clock=lambda: NOW).deliver(item)
    assert result.outcome is DeliveryOutcome.DELIVERED
    [request] = seen
    assert str(request.url) == "https://ehr.test/fhir/Communication"
    assert request.headers["Authorization"] == "Bearer tok"
    # The key's "&" and "=" are escaped so they cannot add search parameters to the condition.
    assert request.headers["If-None-Exist"] == "identifier=urn:cds-control-plane:outbox|a%26b%3Dc"
    body = json.loads(request.content)
    assert datetime.fromisoformat(body["sent"]) == NOW
    assert "encounter" not in body and "priority" not in body


def test_a_communication_payload_missing_a_field_is_dead_without_a_request() -> None:
    seen: list[httpx.Request] = []
    with _client(lambda _: httpx.Response(201), seen) as client:
        result = FhirCommunicationChannel(FHIR, client).deliver(_item("fhir-communication", "ehr", {"text": "x"}))
    assert (result.outcome, result.error) == (DeliveryOutcome.PERMANENT, "invalid-payload")
    assert seen == []


def test_the_condition_names_the_system_and_the_key() -> None:
    assert if_none_exist("urn:x", "decision-1:step-2") == "identifier=urn:x|decision-1%3Astep-2"
