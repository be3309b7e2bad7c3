"""The replay guard port: remembers each token id until its token expires, so a captured token works only once."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta
from typing import Protocol

_PURGE_INTERVAL = timedelta(seconds=30)


def replay_key(iss: str, jti: str) -> str:
    """The key a token is remembered by: `jti` is unique per issuer only, and hashing bounds the stored length."""
    return hashlib.sha256(f"{iss}\n{jti}".encode()).hexdigest()


class ReplayGuard(Protocol):
    def first_use(self, token_key: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record `token_key` until `expires_at`; True when it was not already recorded (and still unexpired).

        Must be atomic across every process that answers calls, or two workers could both accept one token.
        """
        ...


class MemoryReplayGuard:
    """One process's memory: for development and unit tests; a deployment with several workers uses the database
    (`store.replay.SqlReplayGuard`)."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._next_purge: datetime | None = None
        self._lock = threading.Lock()

    def first_use(self, token_key: str, *, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            # Expired entries are dropped now and then, not on every call, so a busy process pays little for it.
            if self._next_purge is None or now >= self._next_purge:
                self._seen = {key: until for key, until in self._seen.items() if until > now}
                self._next_purge = now + _PURGE_INTERVAL
            until = self._seen.get(token_key)
            if until is not None and until > now:
                return False
            self._seen[token_key] = expires_at
            return True
