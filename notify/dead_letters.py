"""Operator actions on the outbox's dead letters: list them, and put one back in the queue (audited)."""

from __future__ import annotations

from collections.abc import Callable

from notify.port import Clock, NotifyAuditKind, OutboxItem, system_clock
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import outbox as outbox_store
from store.port import AuditEntry


def list_dead_letters(unit_of_work: Callable[[], SqlNotifyUnitOfWork], *, limit: int = 100) -> list[OutboxItem]:
    with unit_of_work() as uow:
        return outbox_store.dead_letters(uow.session, limit=limit)


def retry_dead_letter(
    unit_of_work: Callable[[], SqlNotifyUnitOfWork], item_id: int, *, operator: str, clock: Clock = system_clock
) -> OutboxItem | None:
    """Queue a dead letter again with a fresh attempt budget, and audit who did it. None (nothing changes) when the
    message does not exist or is not dead."""
    with unit_of_work() as uow:
        now = clock()
        item = outbox_store.retry_dead(uow.session, item_id, now=now)
        if item is None:
            return None
        # In the same transaction as the retry: a retry never happens without its audit record, nor the reverse.
        uow.repo.append_audit(
            AuditEntry(
                actor=operator,
                kind=NotifyAuditKind.OUTBOX_RETRIED,
                subject=f"outbox:{item.id}",
                at=now,
                payload={"channel": item.channel, "target": item.target, "previous_error": item.last_error},
            )
        )
        uow.commit()
    return item
