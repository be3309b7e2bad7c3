"""Delivering the outbox: claim due messages under a lease, send each outside any transaction, then record the
outcome: delivered, retried later with backoff, or moved to the dead letters."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from notify.backoff import Backoff
from notify.leased import LeasedBatches
from notify.port import (
    Channel,
    Clock,
    DeliveryOutcome,
    DeliveryResult,
    NotifyAuditKind,
    OutboxItem,
    system_clock,
)
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import outbox as outbox_store
from store.port import AuditEntry

log = logging.getLogger(__name__)

WORKER_ACTOR = "notify-worker"


class OutboxDispatcher(LeasedBatches[OutboxItem]):
    _claim_due = staticmethod(outbox_store.claim_due)
    _release_rows = staticmethod(outbox_store.release)

    def __init__(
        self,
        unit_of_work: Callable[[], SqlNotifyUnitOfWork],
        channels: Mapping[str, Channel],
        *,
        worker_id: str,
        lease: timedelta,
        backoff: Backoff,
        batch_size: int = 20,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            unit_of_work, worker_id=worker_id, lease=lease, backoff=backoff, batch_size=batch_size, clock=clock, rng=rng
        )
        self._channels = channels

    def deliver(self, item: OutboxItem) -> DeliveryOutcome:
        """Send one claimed message and record what happened. The send holds no database lock or transaction: a
        slow receiver must not block the writers of an embedded SQLite database."""
        result = self._send(item)
        with self._uow() as uow:
            now = self._clock()
            session = uow.session
            if result.outcome is DeliveryOutcome.DELIVERED:
                recorded = outbox_store.mark_delivered(session, item.id, self._worker_id, now=now)
            elif result.outcome is DeliveryOutcome.RETRY and not self._backoff.exhausted(item.attempts):
                retry_at = now + self._backoff.delay(item.attempts, self._rng)
                error = result.error or "unknown"
                recorded = outbox_store.schedule_retry(
                    session, item.id, self._worker_id, error=error, next_attempt_at=retry_at
                )
            else:
                recorded = outbox_store.mark_dead(session, item.id, self._worker_id, error=result.error or "unknown")
                if recorded:
                    uow.repo.append_audit(_dead_letter_entry(item, result, now))
            uow.commit()
        if not recorded:
            # The lease ran out mid-send and another worker took the message over; its outcome is the one kept.
            log.warning("outbox %d: lease lost during delivery; another worker owns it now", item.id)
        elif result.outcome is not DeliveryOutcome.DELIVERED:
            log.info(
                "outbox %d (%s) attempt %d: %s (%s)", item.id, item.channel, item.attempts, result.outcome, result.error
            )
        return result.outcome

    def _handle(self, row: OutboxItem) -> DeliveryOutcome:
        return self.deliver(row)

    def _send(self, item: OutboxItem) -> DeliveryResult:
        channel = self._channels.get(item.channel)
        if channel is None:
            return DeliveryResult(DeliveryOutcome.PERMANENT, "unknown-channel")
        try:
            return channel.deliver(item)
        except Exception as error:  # a channel bug must cost a retry, not the worker
            # The type only, no traceback: exception messages can carry URLs or payload fragments.
            log.error("outbox %d: channel %s raised %s", item.id, item.channel, type(error).__name__)
            return DeliveryResult(DeliveryOutcome.RETRY, type(error).__name__)


def _dead_letter_entry(item: OutboxItem, result: DeliveryResult, now: datetime) -> AuditEntry:
    return AuditEntry(
        actor=WORKER_ACTOR,
        kind=NotifyAuditKind.OUTBOX_DEAD_LETTERED,
        subject=f"outbox:{item.id}",
        at=now,
        payload={"channel": item.channel, "target": item.target, "attempts": item.attempts, "error": result.error},
    )
