"""Firing due timers: claim a batch under a lease, then fire each in its own transaction together with whatever its
handler writes, so a crash fires a timer fully or not at all."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum

from notify.backoff import Backoff
from notify.port import Clock, Timer, TimerHandler, system_clock
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import timers as timer_store

log = logging.getLogger(__name__)


class FireOutcome(StrEnum):
    FIRED = "fired"
    LOST = "lost"  # cancelled meanwhile, or re-claimed by another worker after this one's lease ran out
    FAILED = "failed"  # the handler raised; retried later, or given up after the last attempt


class TimerRunner:
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
        self._uow = unit_of_work
        self._handlers = handlers
        self._worker_id = worker_id
        self._lease = lease
        self._backoff = backoff
        self._batch_size = batch_size
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not security

    def claim(self) -> list[Timer]:
        with self._uow() as uow:
            claimed = timer_store.claim_due(
                uow.session, now=self._clock(), worker_id=self._worker_id, limit=self._batch_size, lease=self._lease
            )
            uow.commit()
        return claimed

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

    def release(self, timers: Sequence[Timer]) -> int:
        with self._uow() as uow:
            released = timer_store.release(uow.session, [t.id for t in timers], self._worker_id)
            uow.commit()
        return released

    def run_batch(self, stop: threading.Event | None = None) -> int:
        """Claim and fire one batch; returns how many were attempted (0: nothing was due). When `stop` is set
        midway, the unstarted timers go back for the next worker."""
        claimed = self.claim()
        for index, timer in enumerate(claimed):
            if stop is not None and stop.is_set():
                self.release(claimed[index:])
                return index
            self.fire(timer)
        return len(claimed)

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
