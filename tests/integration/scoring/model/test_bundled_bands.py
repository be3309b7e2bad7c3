"""The bundled model emits every band the bundled policy routes on, so no route is dead on arrival."""

from __future__ import annotations

from policy.document import bundled_policy
from scoring.model.registry import BUNDLED_MODELS, ModelRegistry


def test_every_sepsis_model_band_the_bundled_policy_routes_on_is_one_the_bundled_model_emits() -> None:
    card = ModelRegistry(BUNDLED_MODELS).load("sepsis-hgb").card
    declared = bundled_policy("deterioration").scorers["sepsis-hgb"]
    assert sorted(band.name for band in card.bands) == sorted(declared)


def test_the_moderate_band_sits_between_half_the_threshold_and_the_threshold() -> None:
    card = ModelRegistry(BUNDLED_MODELS).load("sepsis-hgb").card
    t = card.threshold
    assert [card.band_of(s) for s in (t * 0.49, t * 0.5, t * 0.99, t)] == ["low", "moderate", "moderate", "high"]
