"""The signed webhook channel: POSTs the message as JSON with an HMAC signature, a timestamp and the idempotency key."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from notify.channels.http import outcome_of_status, outcome_of_transport_error
from notify.port import Clock, DeliveryOutcome, DeliveryResult, OutboxItem, system_clock
from notify.settings import WebhookTarget
from notify.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature


class WebhookChannel:
    def __init__(
        self, targets: Mapping[str, WebhookTarget], client: httpx.Client, *, clock: Clock = system_clock
    ) -> None:
        self._targets = targets
        self._client = client
        self._clock = clock

    def deliver(self, item: OutboxItem) -> DeliveryResult:
        target = self._targets.get(item.target)
        if target is None:
            # Configuration lost the target: dead-letter it, so an operator can restore the target and retry.
            return DeliveryResult(DeliveryOutcome.PERMANENT, "unknown-target")
        body = json.dumps(item.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        timestamp = str(int(self._clock().timestamp()))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(target.secret.get_secret_value(), timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            IDEMPOTENCY_HEADER: item.idempotency_key,
        }
        try:
            response = self._client.post(target.url, content=body, headers=headers)
        except httpx.TransportError as error:
            return outcome_of_transport_error(error)
        return outcome_of_status(response.status_code)
