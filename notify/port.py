"""The notify ports: timer and outbox records, the scheduling and enqueueing ports the policy layer writes through,
and the channel and timer-handler ports the worker drives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from store.port import UnitOfWork

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"
    # The handler failed on every attempt; kept for an operator, never fired.
    FAILED = "failed"


class OutboxState(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    DEAD = "dead"


class ChannelName(StrEnum):
    WEBHOOK = "webhook"
    FHIR_COMMUNICATION = "fhir-communication"


class DeliveryOutcome(StrEnum):
    """What one delivery attempt came to; the dispatcher turns it into the row's next state."""

    DELIVERED = "delivered"
    RETRY = "retry"  # a transient fault: 5xx, 408, 429, timeout, connection refused
    PERMANENT = "permanent"  # retrying cannot help: a 4xx, an unknown target; goes straight to the dead letters


class NotifyAuditKind(StrEnum):
    """Audit record kinds for operator-visible outbox events (appended with `Repository.append_audit`)."""

    OUTBOX_DEAD_LETTERED = "outbox-dead-lettered"
    OUTBOX_RETRIED = "outbox-retried"


@dataclass(frozen=True, slots=True)
class Timer:
    """A claimed timer, as its handler sees it."""

    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a caller enqueues. `target` names a configured webhook or FHIR server; the idempotency key is unique:
    enqueueing the same key twice stores one message."""

    channel: ChannelName
    target: str
    payload: Mapping[str, Any]
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A stored outbox message with its delivery state."""

    id: int
    channel: str
    target: str
    payload: dict[str, Any]
    idempotency_key: str
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    # A status code or exception type ("http-503", "ConnectTimeout"); never a response body.
    error: str | None = None


class Channel(Protocol):
    def deliver(self, item: OutboxItem) -> DeliveryResult:
        """Send one message once; report the outcome instead of raising for delivery faults."""
        ...


class TimerScheduler(Protocol):
    def schedule(self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]) -> bool:
        """Arm a timer; False (and nothing changes) when a timer with this key already exists, in any state."""
        ...

    def cancel(self, key: str) -> bool:
        """Cancel a pending timer; False when there is none (never scheduled, already fired or cancelled)."""
        ...


class OutboxWriter(Protocol):
    def enqueue(self, message: OutboundMessage) -> bool:
        """Store a message in the caller's transaction; False when its idempotency key is already stored."""
        ...


class NotifyUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that can also arm timers and enqueue messages, all in the one transaction."""

    @property
    def timers(self) -> TimerScheduler: ...

    @property
    def outbox(self) -> OutboxWriter: ...


class TimerHandler(Protocol):
    def fire(self, timer: Timer, uow: NotifyUnitOfWork) -> None:
        """Do the timer's work through `uow` (e.g. enqueue a message). Do not commit: the runner commits the
        handler's writes together with marking the timer fired; raising rolls both back for a later retry."""
        ...
