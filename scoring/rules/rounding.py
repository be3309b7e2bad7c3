"""The rule for values between printed bands: round half up to the table's printed precision, then look up."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache


def round_half_up(value: float, precision: int) -> float:
    """Round to `precision` decimals, halves away from zero: 35.05 -> 35.1, 20.5 -> 21, 35.04 -> 35.0.

    The value goes through its shortest decimal form first, so 35.05 (stored in binary as 35.0499999...) rounds
    as the 35.05 that was recorded; Python's round() would give 35.0 there, and banker's rounding 20.5 -> 20.
    """
    if not math.isfinite(value):
        raise ValueError("only finite values can be rounded")
    if value == 0:
        # 0.0 and -0.0 are one cache key but round to different floats: zeros skip the cache.
        return _round(value, precision)
    return _cached_round(value, precision)


def _round(value: float, precision: int) -> float:
    step = Decimal(1).scaleb(-precision)
    return float(Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP))


# Rounding is a pure function of the value and the precision, and vital signs repeat a few hundred values: the
# Decimal round trip runs once per value. `typed` keeps an int apart from the equal float (they round alike, but the
# caller's type is what comes back).
_cached_round = lru_cache(maxsize=4096, typed=True)(_round)
