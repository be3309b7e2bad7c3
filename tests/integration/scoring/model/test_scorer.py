"""`OnnxModelScorer` on live contexts: same numbers as batch replay, explanations, provenance and missing inputs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from clinical.model import ClinicalContext
from clinical.physionet import load_table
from scoring.features import extract, grid_from_context, grid_from_table
from scoring.model.registry import BUNDLED_MODELS, LoadedModel, ModelRegistry
from scoring.model.scorer import ICU_ADMISSION as ICU_ADMISSION_INPUT
from scoring.model.scorer import OnnxModelScorer, score_grid
from scoring.port import Scorer
from tests.unit.scoring.model.stays import ICU_ADMISSION, as_of_hour, context_of_table


@pytest.fixture(scope="module")
def tiny_loaded(tiny_model) -> LoadedModel:  # type: ignore[no-untyped-def]
    return ModelRegistry(tiny_model.directory.parents[1]).load("sepsis-hgb")


@pytest.fixture(scope="module")
def bundled() -> LoadedModel:
    return ModelRegistry(BUNDLED_MODELS).load("sepsis-hgb")


def test_the_live_path_and_batch_replay_give_identical_features_for_every_hour_of_a_real_stay(
    real_septic_stay: Path,
) -> None:
    table = load_table(real_septic_stay)
    assert table["hour"][0] > 1  # the chosen stay starts after the first ICU hour, the harder case
    batch = extract(grid_from_table(table))
    context = context_of_table(table, np.random.default_rng(0))
    hospital = ICU_ADMISSION + timedelta(hours=float(table["hosp_adm_time"][0]))
    for i, hour in enumerate(table["hour"]):
        grid, _ = grid_from_context(context, ICU_ADMISSION, as_of_hour(hour), hospital_admission_utc=hospital)
        np.testing.assert_array_equal(extract(grid)[-1], batch[i], err_msg=f"hour {hour}")


def test_the_bundled_model_scores_a_real_stay_live_exactly_as_replay_does(
    bundled: LoadedModel, real_septic_stay: Path
) -> None:
    table = load_table(real_septic_stay)
    replay = score_grid(bundled, grid_from_table(table))
    context = context_of_table(table, np.random.default_rng(1))
    hospital = ICU_ADMISSION + timedelta(hours=float(table["hosp_adm_time"][0]))
    scorer = OnnxModelScorer(bundled, hospital_admission=lambda _: hospital)
    live = [scorer.score(context, as_of_hour(h))[0].score for h in table["hour"]]
    np.testing.assert_array_equal(np.array(live, dtype=np.float32), replay)
    # The stay turns septic: its risk late in the stay is above its risk at the start.
    assert max(live[-10:]) > live[0]  # type: ignore[operator]


def test_occlusion_runs_only_inputs_a_split_on_the_paths_tells_apart_and_explains_exactly_as_trying_every_input(
    bundled: LoadedModel, real_septic_stay: Path
) -> None:
    table = load_table(real_septic_stay)
    context = context_of_table(table, np.random.default_rng(2))
    pruned = OnnxModelScorer(bundled)
    # Without split tests the scorer sets every input in turn to its median and runs them all.
    every_input = OnnxModelScorer(replace(bundled, splits=None))
    assert bundled.splits is not None
    skipped = 0
    for hour in table["hour"]:
        fast, full = pruned.score(context, as_of_hour(hour))[0], every_input.score(context, as_of_hour(hour))[0]
        assert fast == full, f"hour {hour}"
        grid, _ = grid_from_context(context, ICU_ADMISSION, as_of_hour(hour))
        row = bundled.select(extract(grid))[-1]
        skipped += len(row) - len(bundled.splits.moved(row, pruned._medians))
    assert skipped > 0  # the check above compared something the pruning changed


def test_the_scorer_meets_the_scorer_port(tiny_loaded: LoadedModel) -> None:
    scorer = OnnxModelScorer(tiny_loaded)
    assert isinstance(scorer, Scorer)
    assert (scorer.scorer_id, scorer.version) == ("sepsis-hgb", tiny_loaded.card.version)


def test_a_risk_output_carries_band_explanation_provenance_and_a_stable_hash(
    tiny_loaded: LoadedModel, tiny_stays: Path
) -> None:
    table = load_table(tiny_stays / "p000000.psv")
    context = context_of_table(table, np.random.default_rng(2))
    scorer = OnnxModelScorer(tiny_loaded)
    as_of = as_of_hour(int(table["hour"][-1]))
    (output,) = scorer.score(context, as_of)
    assert output.score is not None and 0 <= output.score <= 1
    assert output.band == ("high" if output.score >= tiny_loaded.card.threshold else "low")
    assert output.explanation and all(c.feature in tiny_loaded.card.feature_names for c in output.explanation)
    assert abs(output.explanation[0].points) >= abs(output.explanation[-1].points)
    heart_rate = output.features["heart_rate"]
    assert heart_rate.provenance is not None and heart_rate.provenance.resource_type == "Observation"
    assert heart_rate.observed_utc is not None and heart_rate.observed_utc <= as_of
    assert not output.partial
    assert scorer.score(context, as_of)[0].input_hash == output.input_hash
    earlier = scorer.score(context, as_of - timedelta(hours=3))[0]
    assert earlier.input_hash != output.input_hash


def test_missing_key_inputs_make_a_partial_output_that_names_them(tiny_loaded: LoadedModel, tiny_stays: Path) -> None:
    table = load_table(tiny_stays / "p000001.psv")
    full = context_of_table(table, np.random.default_rng(3))
    only_heart_rate = ClinicalContext(
        patient=full.patient,
        encounter=full.encounter,
        observations=tuple(o for o in full.observations if o.kind == "heart_rate"),
    )
    (output,) = OnnxModelScorer(tiny_loaded).score(only_heart_rate, as_of_hour(int(table["hour"][-1])))
    assert output.partial
    assert set(output.missing) == set(tiny_loaded.card.key_inputs) - {"heart_rate"}
    assert output.score is not None  # the model handles missing values; the output says they were missing
    assert output.features["sbp"].value is None


def test_a_context_with_no_observations_is_scored_as_partial(tiny_loaded: LoadedModel, tiny_stays: Path) -> None:
    table = load_table(tiny_stays / "p000001.psv")
    full = context_of_table(table, np.random.default_rng(4))
    empty = ClinicalContext(patient=full.patient, encounter=full.encounter)
    (output,) = OnnxModelScorer(tiny_loaded).score(empty, ICU_ADMISSION + timedelta(hours=5))
    assert output.partial and set(output.missing) == set(tiny_loaded.card.key_inputs)


def test_without_an_icu_admission_time_there_is_no_score(tiny_loaded: LoadedModel) -> None:
    (output,) = OnnxModelScorer(tiny_loaded).score(ClinicalContext(patient=None), ICU_ADMISSION)
    assert output.score is None
    assert output.band == "unknown"
    assert output.missing == (ICU_ADMISSION_INPUT,)
