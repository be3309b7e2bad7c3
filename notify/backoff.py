"""Retry timing: exponential backoff with jitter, capped, and the attempt budget after which a message is dead."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempt n (1-based) waits between half and all of min(cap, base * 2**(n-1)) before the next one.

    "Equal jitter" rather than full jitter: the random half spreads out workers that failed together (a receiver
    coming back is not hit by every retry at once), while the fixed half keeps each wait at least as long as the
    one before until the cap is reached, so a receiver that is down for minutes sees the gaps grow.
    """

    base: timedelta
    cap: timedelta
    max_attempts: int

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("backoff needs 0 < base <= cap")
        if self.max_attempts < 1:
            raise ValueError("backoff needs at least one attempt")

    def ceiling(self, attempt: int) -> timedelta:
        """The longest wait after `attempt` failed attempts."""
        if attempt < 1:
            raise ValueError("attempts are counted from 1")
        # In float seconds, capped before converting: base * 2**n overflows timedelta at a few dozen attempts.
        seconds = self.base.total_seconds() * 2.0 ** min(attempt - 1, 100)
        return min(self.cap, timedelta(seconds=min(seconds, self.cap.total_seconds())))

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + ceiling / 2 * rng.random()

    def exhausted(self, attempts: int) -> bool:
        """Whether `attempts` tries use up the budget (the message goes to the dead letters)."""
        return attempts >= self.max_attempts
