"""What an HTTP answer or transport fault means for a delivery: delivered, worth retrying, or permanent."""

from __future__ import annotations

import httpx

from notify.port import DeliveryOutcome, DeliveryResult
from notify.settings import NotifySettings

# Client errors that say "not now" rather than "never": a timeout on the receiver's side, or rate limiting.
_TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})


def outcome_of_status(status: int) -> DeliveryResult:
    if 200 <= status < 300:
        return DeliveryResult(DeliveryOutcome.DELIVERED)
    error = f"http-{status}"
    if status >= 500 or status in _TRANSIENT_CLIENT_ERRORS:
        return DeliveryResult(DeliveryOutcome.RETRY, error)
    # Other 4xx (and 3xx, since redirects are not followed: a signed body goes only where it was configured to)
    # will be answered the same way next time; an operator has to look, so the message goes to the dead letters.
    return DeliveryResult(DeliveryOutcome.PERMANENT, error)


def outcome_of_transport_error(error: httpx.TransportError) -> DeliveryResult:
    # Only the exception's type: its message can carry the URL, and a URL can carry identifiers.
    return DeliveryResult(DeliveryOutcome.RETRY, type(error).__name__)


def make_client(settings: NotifySettings) -> httpx.Client:
    """A client with bounded timeouts, so one hung receiver cannot hold a worker for longer than its lease."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_seconds,
        read=settings.read_timeout_seconds,
        write=settings.read_timeout_seconds,
        pool=settings.connect_timeout_seconds,
    )
    return httpx.Client(timeout=timeout, follow_redirects=False)
