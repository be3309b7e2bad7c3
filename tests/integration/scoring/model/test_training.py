"""Training end to end on synthetic stays: a registry entry with a truthful card, an ONNX export that matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from scoring.features import FEATURE_INDEX
from scoring.model.cli import app
from scoring.model.registry import ModelRegistry, sha256_of
from scoring.model.training import Candidate, ParityError, TrainResult, check_parity, export_onnx, train
from tests.integration.scoring.model.conftest import TINY_CANDIDATES
from tests.unit.scoring.model.stays import write_psv_stays


def test_training_writes_an_entry_whose_card_describes_the_model(tiny_model) -> None:  # type: ignore[no-untyped-def]
    card = tiny_model.card
    assert card.sha256 == sha256_of(tiny_model.directory / "model.onnx")
    assert card.features and all(f.name in FEATURE_INDEX for f in card.features)
    # Columns that never vary in training (EtCO2 is never measured here) are not model inputs.
    assert "etco2" not in card.feature_names
    assert 0 < card.threshold < 1
    assert card.bands[0].name == "high" and card.bands[0].min_score == card.threshold
    for split in ("validation", "test"):
        assert set(card.metrics[split]) >= {"auroc", "auprc", "normalised_utility"}
    # The synthetic septic stays drift into shock, so a working pipeline separates them well.
    assert card.metrics["test"]["auroc"] > 0.8
    assert card.metrics["test"]["normalised_utility"] > 0.3
    assert tiny_model.parity_max_abs <= 1e-5
    assert {"scikit-learn", "skl2onnx", "onnxruntime"} <= set(card.library_versions)
    assert card.training_data["stays"] == 45
    assert card.hyperparameters["iterations"] >= 1


def _train_tiny(
    stays: Path, out: Path, budget: float, candidates: tuple[Candidate, ...] = TINY_CANDIDATES
) -> TrainResult:
    """The tiny registry's training (the fixture's seed and iterations) under another node visit budget."""
    return train(
        stays, out, seed=5, candidates=candidates, max_iter=40, threads=1, progress=False, node_visit_budget=budget
    )


def test_the_card_records_what_a_row_costs_to_score(tiny_model) -> None:  # type: ignore[no-untyped-def]
    hp = tiny_model.card.hyperparameters
    setting = ("max_leaf_nodes", "label_lead_hours")
    chosen = next(t for t in hp["candidates"] if all(t[k] == hp[k] for k in setting))
    assert hp["node_visits_per_row"] == chosen["node_visits_per_row"]
    assert 0 < hp["node_visits_per_row"] <= hp["node_visit_budget"]


def test_the_best_candidate_is_passed_over_when_its_trees_cost_more_than_the_budget(  # type: ignore[no-untyped-def]
    tiny_model, tiny_stays: Path, tmp_path: Path
) -> None:
    tried = tiny_model.card.hyperparameters["candidates"]
    best = max(tried, key=lambda t: t["validation_utility"])
    cheap = min(tried, key=lambda t: t["node_visits_per_row"])
    # The fixture's candidates trade cost against utility, or there would be nothing to pass over.
    assert best is not cheap and best["validation_utility"] > cheap["validation_utility"]
    budget = (best["node_visits_per_row"] + cheap["node_visits_per_row"]) / 2
    hp = _train_tiny(tiny_stays, tmp_path, budget).card.hyperparameters
    assert (hp["max_leaf_nodes"], hp["label_lead_hours"]) == (cheap["max_leaf_nodes"], cheap["label_lead_hours"])
    assert hp["node_visits_per_row"] <= budget


def test_a_depth_capped_candidate_grows_only_the_trees_the_budget_pays_for(tiny_stays: Path, tmp_path: Path) -> None:
    shallow = Candidate(min_samples_leaf=10, max_depth=2)
    hp = _train_tiny(tiny_stays, tmp_path, 20, candidates=(shallow,)).card.hyperparameters
    assert (hp["max_depth"], hp["iterations"]) == (2, 10)
    assert hp["node_visits_per_row"] <= 20


def test_training_refuses_when_no_candidate_fits_the_budget(tiny_stays: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no candidate fits the budget of 5 node visits a row"):
        _train_tiny(tiny_stays, tmp_path, 5)
    assert not (tmp_path / "sepsis-hgb").exists()


def test_the_trained_entry_loads_from_its_registry(tiny_model) -> None:  # type: ignore[no-untyped-def]
    loaded = ModelRegistry(tiny_model.directory.parents[1]).load("sepsis-hgb")
    assert loaded.card == tiny_model.card


def test_onnx_export_reproduces_scikit_learn_on_rows_with_missing_values() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 12)).astype(np.float32)
    x[rng.random(x.shape) < 0.4] = np.nan
    y = (np.nan_to_num(x[:, 0]) + np.isnan(x[:, 1]) + rng.normal(0, 0.5, 3000) > 0.8).astype(int)
    with threadpool_limits(limits=1):
        model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(x, y)
    held_out = rng.normal(size=(2000, 12)).astype(np.float32)
    held_out[rng.random(held_out.shape) < 0.4] = np.nan
    assert check_parity(model, export_onnx(model, 12), held_out) <= 1e-5


def test_an_export_that_disagrees_with_scikit_learn_is_refused() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    with threadpool_limits(limits=1):
        model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
        other = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, 1 - y)
    with pytest.raises(ParityError, match="differs from scikit-learn"):
        check_parity(model, export_onnx(other, 4), x)


def test_training_needs_septic_and_non_septic_hours(tmp_path: Path) -> None:
    write_psv_stays(tmp_path / "stays", stays=4, seed=2)
    for f in (tmp_path / "stays").glob("*.psv"):
        text = f.read_text().replace("|1\n", "|0\n")
        f.write_text(text)
    with pytest.raises(ValueError, match="both septic and non-septic"):
        train(tmp_path / "stays", tmp_path / "reg", candidates=(Candidate(),), threads=1, progress=False)


def test_predict_writes_one_file_per_stay_with_one_row_per_hour(  # type: ignore[no-untyped-def]
    tiny_model, tiny_stays: Path, tmp_path: Path
) -> None:
    out = tmp_path / "predictions"
    registry = tiny_model.directory.parents[1]
    result = CliRunner().invoke(app, ["predict", str(tiny_stays), "--out", str(out), "--registry", str(registry)])
    assert result.exit_code == 0, result.output
    inputs = sorted(tiny_stays.glob("*.psv"))
    assert sorted(p.name for p in out.glob("*.psv")) == [p.name for p in inputs]
    for source in inputs[:5]:
        predicted = pl.read_csv(out / source.name, separator="|")
        assert predicted.columns == ["PredictedProbability", "PredictedLabel"]
        assert predicted.height == len(source.read_text().strip().split("\n")) - 1
        labels = (predicted["PredictedProbability"] >= tiny_model.card.threshold).cast(pl.Int64)
        # Probabilities are written to 6 decimals; compare labels away from the threshold's rounding.
        near = (predicted["PredictedProbability"] - tiny_model.card.threshold).abs() < 1e-6
        assert ((labels == predicted["PredictedLabel"]) | near).all()


def test_train_command_reports_the_metrics(tiny_stays: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(tiny_stays),
            "--out",
            str(tmp_path / "reg"),
            "--version",
            "2.0.0",
            "--max-iter",
            "20",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "test: auroc" in result.output and "node visits a row" in result.output
    assert (tmp_path / "reg" / "sepsis-hgb" / "2.0.0" / "card.json").is_file()
