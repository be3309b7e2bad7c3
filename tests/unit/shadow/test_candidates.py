"""A candidate threshold moves the alerting edge and keeps the bands below it in proportion."""

from __future__ import annotations

import pytest

from shadow.candidates import scaled_edges

CARD = (("high", 0.08), ("moderate", 0.04), ("low", 0.0))


@pytest.mark.parametrize("threshold", [0.02, 0.08, 0.2])
def test_a_candidate_threshold_keeps_moderate_at_half_of_it(threshold: float) -> None:
    edges = dict(scaled_edges(CARD, 0.08, threshold))
    assert edges["high"] == threshold
    assert edges["moderate"] == pytest.approx(threshold / 2)
    assert edges["low"] == 0.0


def test_raising_the_threshold_raises_every_band_that_can_alert() -> None:
    # With a fixed moderate edge, a higher threshold would only turn high alerts into (delayed) moderate ones.
    low, high = dict(scaled_edges(CARD, 0.08, 0.05)), dict(scaled_edges(CARD, 0.08, 0.3))
    assert high["moderate"] > low["high"]
