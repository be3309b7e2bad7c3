"""Backoff: jittered waits that grow until the cap, and an attempt budget."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify.backoff import Backoff

BACKOFF = Backoff(base=timedelta(seconds=2), cap=timedelta(minutes=10), max_attempts=8)


@given(attempt=st.integers(min_value=1, max_value=10_000), seed=st.integers())
def test_each_wait_lies_between_half_and_all_of_its_ceiling_and_never_past_the_cap(attempt: int, seed: int) -> None:
    wait = BACKOFF.delay(attempt, random.Random(seed))
    ceiling = BACKOFF.ceiling(attempt)
    assert ceiling / 2 <= wait <= ceiling <= BACKOFF.cap


@given(seed=st.integers())
def test_successive_waits_never_shrink_until_the_cap_whatever_the_jitter(seed: int) -> None:
    rng = random.Random(seed)
    # Ceilings are 2 s, 4 s, ... 512 s, then the 600 s cap from attempt 10 on.
    waits = [BACKOFF.delay(attempt, rng) for attempt in range(1, 10)]
    assert waits == sorted(waits)


def test_ceilings_double_from_the_base_until_the_cap() -> None:
    assert [BACKOFF.ceiling(n).total_seconds() for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600]


def test_jitter_spreads_workers_that_failed_together() -> None:
    waits = {BACKOFF.delay(5, random.Random(seed)) for seed in range(20)}
    assert len(waits) > 10


def test_the_budget_is_spent_after_max_attempts() -> None:
    assert not BACKOFF.exhausted(7)
    assert BACKOFF.exhausted(8)


@pytest.mark.parametrize(
    ("base", "cap", "attempts"),
    [
        (timedelta(0), timedelta(seconds=1), 3),
        (timedelta(seconds=2), timedelta(seconds=1), 3),
        (timedelta(1), timedelta(1), 0),
    ],
)
def test_nonsense_timing_is_refused(base: timedelta, cap: timedelta, attempts: int) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(base=base, cap=cap, max_attempts=attempts)
