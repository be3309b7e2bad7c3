"""The model's two admission inputs on a live call: ICU admission from the unit's location periods, hospital
admission from the encounter's start when the two can be told apart, else the training median (never 0 h)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from clinical.model import ClinicalContext
from clinical.physionet import load_table
from scoring.model.registry import BUNDLED_MODELS, LoadedModel, ModelRegistry
from scoring.model.scorer import HOSPITAL_ADMISSION_FEATURE, OnnxModelScorer
from tests.unit.scoring.model.stays import ICU_ADMISSION, as_of_hour, context_of_table


@pytest.fixture(scope="module")
def bundled() -> LoadedModel:
    return ModelRegistry(BUNDLED_MODELS).load("sepsis-hgb")


@pytest.fixture(scope="module")
def septic_context(real_septic_stay: Path) -> tuple[ClinicalContext, int]:
    table = load_table(real_septic_stay)
    return context_of_table(table, np.random.default_rng(3)), int(table["hour"][-1])


def with_encounter(context: ClinicalContext, **changes: object) -> ClinicalContext:
    assert context.encounter is not None
    return dataclasses.replace(context, encounter=dataclasses.replace(context.encounter, **changes))


def test_an_unknown_hospital_admission_scores_as_the_training_median_not_as_zero_hours(
    bundled: LoadedModel, septic_context: tuple[ClinicalContext, int]
) -> None:
    context, hour = septic_context
    median = next(f.median for f in bundled.card.features if f.name == HOSPITAL_ADMISSION_FEATURE)
    assert median is not None and median < 0
    unknown = OnnxModelScorer(bundled).score(context, as_of_hour(hour))[0]
    at_median = OnnxModelScorer(bundled, hospital_admission=lambda _: ICU_ADMISSION + timedelta(hours=median))
    at_zero = OnnxModelScorer(bundled, hospital_admission=lambda _: ICU_ADMISSION)
    assert unknown.score == at_median.score(context, as_of_hour(hour))[0].score
    assert unknown.score != at_zero.score(context, as_of_hour(hour))[0].score
    # Imputed at its median, the input explains nothing.
    assert all(c.feature != HOSPITAL_ADMISSION_FEATURE for c in unknown.explanation)


def test_location_periods_give_the_icu_admission_and_the_encounter_start_the_hospital_admission(
    bundled: LoadedModel, septic_context: tuple[ClinicalContext, int]
) -> None:
    context, hour = septic_context
    hospital = ICU_ADMISSION - timedelta(hours=30)
    moved = with_encounter(context, start_utc=hospital, unit_start_utc=ICU_ADMISSION)
    live = OnnxModelScorer(bundled).score(moved, as_of_hour(hour))[0]
    explicit = OnnxModelScorer(
        bundled, icu_admission=lambda _: ICU_ADMISSION, hospital_admission=lambda _: hospital
    ).score(context, as_of_hour(hour))[0]
    assert live.score == explicit.score
    assert live.features["icu_los_hours"].value == hour
