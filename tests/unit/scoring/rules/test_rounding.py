"""The stated rule for values between printed bands: round half up to the printed precision."""

from __future__ import annotations

import math

import pytest

from scoring.rules.rounding import round_half_up


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        (35.05, 1, 35.1),  # stored in binary as 35.04999...; rounds as the 35.05 that was recorded
        (35.04, 1, 35.0),
        (36.05, 1, 36.1),
        (38.049, 1, 38.0),
        (20.5, 0, 21.0),  # half up, not to even
        (21.5, 0, 22.0),
        (20.49, 0, 20.0),
        (8.5, 0, 9.0),
        (100.0, 0, 100.0),
        (-0.5, 0, -1.0),  # halves away from zero
        (31.95, 1, 32.0),
    ],
)
def test_values_are_rounded_half_up_to_the_printed_precision(value: float, precision: int, expected: float) -> None:
    assert round_half_up(value, precision) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_half_up(value, 0)


def test_zeros_keep_their_sign_whichever_was_rounded_first() -> None:
    for _ in range(2):  # the second round would come from a cache keyed on the equal zeros
        assert math.copysign(1.0, round_half_up(-0.0, 1)) == -1.0
        assert math.copysign(1.0, round_half_up(0.0, 1)) == 1.0


def test_a_repeated_value_rounds_the_same_at_each_precision() -> None:
    assert [round_half_up(35.05, 1), round_half_up(35.05, 0), round_half_up(35.05, 1)] == [35.1, 35.0, 35.1]
