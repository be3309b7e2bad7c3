"""The FHIR channel: POSTs an R4 `Communication` (an alert to a role) to the EHR's FHIR server as a conditional
create on the idempotency identifier, so a repeated send creates one resource."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx
from fhir.resources.R4B.communication import Communication
from pydantic import ValidationError

from notify.channels.http import outcome_of_status, outcome_of_transport_error
from notify.port import (
    ChannelName,
    Clock,
    DeliveryOutcome,
    DeliveryResult,
    OutboundMessage,
    OutboxItem,
    system_clock,
)
from notify.settings import FhirTarget

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/communication-category"
FHIR_JSON = "application/fhir+json"


def communication_message(
    *,
    target: str,
    idempotency_key: str,
    patient_id: str,
    recipient_role: str,
    text: str,
    encounter_id: str | None = None,
    priority: str | None = None,
) -> OutboundMessage:
    """The outbox message for one Communication; `priority` is a FHIR request priority (routine, urgent, ...)."""
    payload: dict[str, Any] = {"patient_id": patient_id, "recipient_role": recipient_role, "text": text}
    if encounter_id is not None:
        payload["encounter_id"] = encounter_id
    if priority is not None:
        payload["priority"] = priority
    return OutboundMessage(ChannelName.FHIR_COMMUNICATION, target, payload, idempotency_key)


def communication_resource(item: OutboxItem, identifier_system: str, sent: str) -> dict[str, Any]:
    """The Communication resource for an outbox item (JSON-ready); raises KeyError for a payload missing a field."""
    payload = item.payload
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [{"system": identifier_system, "value": item.idempotency_key}],
        "status": "completed",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "alert"}]}],
        "subject": {"reference": f"Patient/{payload['patient_id']}"},
        # Addressed to a role, not a person: the EHR routes it to whoever holds the role now.
        "recipient": [{"type": "PractitionerRole", "display": payload["recipient_role"]}],
        "sent": sent,
        "payload": [{"contentString": payload["text"]}],
    }
    if payload.get("encounter_id"):
        resource["encounter"] = {"reference": f"Encounter/{payload['encounter_id']}"}
    if payload.get("priority"):
        resource["priority"] = payload["priority"]
    return resource


def if_none_exist(identifier_system: str, key: str) -> str:
    # Percent-encoded, since the header is a search query: a key with "&" or "=" would otherwise change its meaning.
    return f"identifier={quote(identifier_system, safe=':/')}|{quote(key, safe='')}"


class FhirCommunicationChannel:
    def __init__(self, targets: Mapping[str, FhirTarget], client: httpx.Client, *, clock: Clock = system_clock) -> None:
        self._targets = targets
        self._client = client
        self._clock = clock

    def deliver(self, item: OutboxItem) -> DeliveryResult:
        target = self._targets.get(item.target)
        if target is None:
            return DeliveryResult(DeliveryOutcome.PERMANENT, "unknown-target")
        sent = self._clock().astimezone(UTC).isoformat(timespec="seconds")
        try:
            resource = communication_resource(item, target.identifier_system, sent)
            # Checked here rather than by the server: an invalid resource is our fault and would fail every retry.
            body = Communication.model_validate(resource).model_dump_json(exclude_none=True)
        except (KeyError, ValidationError):
            return DeliveryResult(DeliveryOutcome.PERMANENT, "invalid-payload")
        headers = {
            "Content-Type": FHIR_JSON,
            "Accept": FHIR_JSON,
            "If-None-Exist": if_none_exist(target.identifier_system, item.idempotency_key),
        }
        if target.bearer_token is not None:
            headers["Authorization"] = f"Bearer {target.bearer_token.get_secret_value()}"
        try:
            response = self._client.post(f"{target.base_url.rstrip('/')}/Communication", content=body, headers=headers)
        except httpx.TransportError as error:
            return outcome_of_transport_error(error)
        return outcome_of_status(response.status_code)
