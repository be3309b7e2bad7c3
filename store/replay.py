"""The replay guard in the database: one insert per accepted token, refused by the primary key when it was seen."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError

from store.tables import EhrTokenUseRow

# Expired rows are deleted on the way, at most this often per process: often enough to keep the table near the
# number of tokens alive, rarely enough to cost nothing measurable per call.
PURGE_INTERVAL = timedelta(seconds=60)


class SqlReplayGuard:
    """Implements `api.security.replay.ReplayGuard`. Atomic across worker processes and hosts sharing the database,
    because the database, not this process, decides which of two concurrent inserts of one key wins."""

    def __init__(self, engine: Engine, *, purge_interval: timedelta = PURGE_INTERVAL) -> None:
        self._engine = engine
        self._purge_interval = purge_interval
        self._last_purge: datetime | None = None
        self._purge_lock = threading.Lock()

    def first_use(self, token_key: str, *, expires_at: datetime, now: datetime) -> bool:
        self._maybe_purge(now)
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(EhrTokenUseRow).values(token_key=token_key, expires_at=expires_at, first_seen_at=now)
                )
            return True
        except IntegrityError:
            pass
        # The key is known. It may still be an expired row the purge has not reached: only then may it be taken over,
        # and the conditional update lets exactly one contender do so.
        with self._engine.begin() as connection:
            taken = connection.execute(
                update(EhrTokenUseRow)
                .where(EhrTokenUseRow.token_key == token_key, EhrTokenUseRow.expires_at <= now)
                .values(expires_at=expires_at, first_seen_at=now)
            )
        return taken.rowcount == 1

    def purge(self, now: datetime) -> int:
        """Delete every row whose token has expired; returns how many."""
        with self._engine.begin() as connection:
            result = connection.execute(delete(EhrTokenUseRow).where(EhrTokenUseRow.expires_at <= now))
        return result.rowcount

    def _maybe_purge(self, now: datetime) -> None:
        with self._purge_lock:
            if self._last_purge is not None and now - self._last_purge < self._purge_interval:
                return
            self._last_purge = now
        self.purge(now)
