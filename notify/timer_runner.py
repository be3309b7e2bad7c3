"""Firing due timers: claim a batch under a lease, then fire each in its own transaction together with whatever its
handler writes, so a crash fires a timer fully or not at all."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import StrEnum

from notify.backoff import Backoff
from notify.leased import LeasedBatches
from notify.port import Clock, Timer, TimerHandler, system_clock
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import timers as timer_store

log = logging.getLogger(__name__)


class FireOutcome(StrEnum):
    FIRED = "fired"
    LOST = "lost"  # cancelled meanwhile, or re-claimed by another worker after this one's lease ran out
    FAILED = "failed"  # the handler raised; retried later, or given up after the last attempt


class TimerRunner(LeasedBatches[Timer]):
    _claim_due = staticmethod(timer_store.claim_due)
    _release_rows = staticmethod(timer_store.release)

    def __init__(
        self,
        unit_of_work: Callable[[], SqlNotifyUnitOfWork],
        handlers: Mapping[str, TimerHandler],
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
        self._handlers = handlers

    def fire(self, timer: Timer) -> FireOutcome:
        handler = self._handlers.get(timer.kind)
        with self._uow() as uow:
            # Marking first takes the row lock: a concurrent cancel waits for this transaction, then finds it fired.
            if not timer_store.mark_fired(uow.session, timer.id, self._worker_id, now=self._clock()):
                return FireOutcome.LOST
            try:
                if handler is None:
                    raise LookupError(f"no handler for timer kind {timer.kind!r}")
                handler.fire(timer, uow)
                uow.commit()
            except Exception as error:  # any handler fault is recorded and retried, never lost
                uow.rollback()
                self._record_failure(timer, type(error).__name__)
                return FireOutcome.FAILED
        return FireOutcome.FIRED

    def _handle(self, row: Timer) -> FireOutcome:
        return self.fire(row)

    def _record_failure(self, timer: Timer, error: str) -> None:
        give_up = self._backoff.exhausted(timer.attempts)
        retry_at = None if give_up else self._clock() + self._backoff.delay(timer.attempts, self._rng)
        with self._uow() as uow:
            timer_store.record_failure(uow.session, timer.id, self._worker_id, error=error, retry_at=retry_at)
            uow.commit()
        log.warning(
            "timer %d (%s) handler failed on attempt %d with %s; %s",
            timer.id,
            timer.kind,
            timer.attempts,
            error,
            "giving up" if give_up else "will retry",
        )
