"""What the timer runner and the outbox dispatcher share: a worker's lease on claimed rows, claimed a batch at a
time, handled one by one, and the unstarted ones given back when the worker is asked to stop."""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from sqlalchemy.orm import Session

from notify.backoff import Backoff
from notify.port import Clock, system_clock
from notify.unit_of_work import SqlNotifyUnitOfWork


class _Row(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=_Row)


class ClaimDue(Protocol[RowT]):
    def __call__(
        self, session: Session, *, now: datetime, worker_id: str, limit: int, lease: timedelta
    ) -> list[RowT]: ...


class LeasedBatches(ABC, Generic[RowT]):
    """Claims due rows under a lease (store.leases) and hands each to `_handle`; subclasses say which store."""

    _claim_due: ClaimDue[RowT]
    _release_rows: Callable[[Session, Sequence[int], str], int]

    def __init__(
        self,
        unit_of_work: Callable[[], SqlNotifyUnitOfWork],
        *,
        worker_id: str,
        lease: timedelta,
        backoff: Backoff,
        batch_size: int = 20,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
    ) -> None:
        self._uow = unit_of_work
        self._worker_id = worker_id
        self._lease = lease
        self._backoff = backoff
        self._batch_size = batch_size
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not security

    def claim(self) -> list[RowT]:
        with self._uow() as uow:
            claimed = type(self)._claim_due(
                uow.session, now=self._clock(), worker_id=self._worker_id, limit=self._batch_size, lease=self._lease
            )
            uow.commit()
        return claimed

    def release(self, rows: Sequence[RowT]) -> int:
        """Give back claimed rows this worker has not started (graceful shutdown)."""
        with self._uow() as uow:
            released = type(self)._release_rows(uow.session, [r.id for r in rows], self._worker_id)
            uow.commit()
        return released

    def run_batch(self, stop: threading.Event | None = None) -> int:
        """Claim and handle one batch; returns how many were attempted (0: nothing was due). When `stop` is set
        midway, the unstarted rows go back for the next worker."""
        claimed = self.claim()
        for index, row in enumerate(claimed):
            if stop is not None and stop.is_set():
                self.release(claimed[index:])
                return index
            self._handle(row)
        return len(claimed)

    @abstractmethod
    def _handle(self, row: RowT) -> object: ...
