"""Training: PhysioNet-shaped stays -> HistGradientBoosting -> ONNX (parity-checked) -> a registry entry with its card.

Stays, not rows, are split into train / validation / test, so no patient's hours leak across splits. Validation
drives early stopping, the choice among a few candidate settings and the alert threshold; test is only reported.
Only candidates whose exported trees a row can pass through within a budget of split tests are eligible: that count
sets how many rows a second one core scores.
"""

from __future__ import annotations

import logging
import platform
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import polars as pl
from skl2onnx import to_onnx
from sklearn.ensemble import HistGradientBoostingClassifier

# Neither package ships type information; the project adds no stub packages for two calls.
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
from tqdm import tqdm  # type: ignore[import-untyped]

from scoring.features.catalogue import FEATURES
from scoring.features.extract import FeatureMatrix, extract
from scoring.features.grid import grid_from_table
from scoring.model.card import Band, CardFeature, ModelCard
from scoring.model.registry import session_options, write_entry
from scoring.model.splits import read_split_tests
from scoring.utility import best_threshold, hourly_auprc, hourly_auroc, normalised_utility

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5
# Mean split tests a validation row meets over all trees. On one core onnxruntime spends about 5 ns on a test and
# 10 ns on a tree (measured on set A: 342 tests in 58 trees took 2.2 us a row, 148 in 37 took 1.1 us), so 120 tests
# in 30 depth-4 trees leave a row under a microsecond: issue 4's target of 1,000,000 rows/s for the model alone.
NODE_VISIT_BUDGET = 120.0
KEY_INPUTS = ("heart_rate", "sbp", "resp_rate", "temperature", "spo2")
INTENDED_USE = (
    "Hourly risk that an adult ICU patient meets Sepsis-3 criteria within the next hours (PhysioNet 2019 label), "
    "to prompt clinical review. Not a diagnosis; not validated outside the training hospital system; not for "
    "children, wards or emergency departments."
)


class ParityError(RuntimeError):
    """The exported ONNX model does not reproduce the scikit-learn model closely enough to be shipped."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One setting tried on the validation split."""

    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    l2_regularization: float = 1.0
    min_samples_leaf: int = 100
    # Weight of positive rows (class weighting) in the loss.
    positive_weight: float = 1.0
    # Train on a label that turns positive this many hours before SepsisLabel does; the utility rewards alerts
    # from 12 h before onset, the label starts at 6 h before, so an earlier target can pay off.
    label_lead_hours: int = 0
    # Most split tests on one root-to-leaf path; with a visit budget it also caps the trees at budget / depth, so
    # the candidate fits the budget by construction. None: trees grow to `max_leaf_nodes` at any depth.
    max_depth: int | None = None


# Settings compared on set A during development (patient-level validation / test normalised utility): unit
# weights 0.423 / 0.423; positive weight 3: 0.426 / 0.432; 4 h earlier label: 0.411 / 0.432; 4 h earlier label with
# positive weight 2: 0.423 / 0.431. Differences are within split noise, so two cheap settings are kept.
# Within the budget (split seed 2019, validation / test utility): 31-leaf trees at any depth, as in 1.0.0, took 342
# tests a row for 0.408 / 0.446; depth 4 at learning rate 0.2 spent 120 tests for 0.407 / 0.424 (148 for 0.410 /
# 0.436); depth 5 at 0.25: 0.405 / 0.411; depth 3 at 0.3 (123 tests): 0.402 / 0.428; at most 15 leaves at any depth
# (110 tests): 0.400 / 0.425; a weight of 2 or 5 instead of 3 at depth 4: 0.411 / 0.427 and 0.401 / 0.428.
DEFAULT_CANDIDATES: tuple[Candidate, ...] = (
    Candidate(learning_rate=0.2, max_depth=4, positive_weight=3.0),
    Candidate(learning_rate=0.2, max_depth=4, positive_weight=2.0),
)


@dataclass(frozen=True, slots=True)
class Split:
    """Row masks and the stay starts within each split's rows (for the utility)."""

    train: npt.NDArray[np.bool_]
    validation: npt.NDArray[np.bool_]
    test: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class TrainResult:
    directory: Path
    card: ModelCard
    parity_max_abs: float


def split_stays(
    stay_of_row: npt.NDArray[np.int64],
    septic_stay: npt.NDArray[np.bool_],
    seed: int,
    fractions: tuple[float, float] = (0.7, 0.15),
) -> Split:
    """Patient-level split, stratified on whether the stay is septic; remaining stays go to test."""
    rng = np.random.default_rng(seed)
    part = np.empty(len(septic_stay), dtype=np.int8)
    for group in (np.flatnonzero(septic_stay), np.flatnonzero(~septic_stay)):
        shuffled = rng.permutation(group)
        n_train = round(len(group) * fractions[0])
        n_val = round(len(group) * fractions[1])
        part[shuffled[:n_train]] = 0
        part[shuffled[n_train : n_train + n_val]] = 1
        part[shuffled[n_train + n_val :]] = 2
    rows = part[stay_of_row]
    return Split(train=rows == 0, validation=rows == 1, test=rows == 2)


def starts_within(stay_of_row: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Stay starts of the rows selected by `mask` (stays are contiguous, so order is kept)."""
    stays = stay_of_row[mask]
    change = np.ones(len(stays), dtype=bool)
    change[1:] = stays[1:] != stays[:-1]
    return np.flatnonzero(change).astype(np.int64)


def lead_label(
    labels: npt.NDArray[np.int8], stay_of_row: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], hours: int
) -> npt.NDArray[np.int8]:
    """The label turned positive `hours` earlier within each septic stay (never before the stay's first row)."""
    if hours == 0:
        return labels
    t = np.arange(len(labels)) - starts[stay_of_row]
    first = np.full(len(starts), np.iinfo(np.int64).max)
    positive = labels == 1
    np.minimum.at(first, stay_of_row[positive], t[positive])
    onset = first[stay_of_row]
    return np.asarray((onset != np.iinfo(np.int64).max) & (t >= onset - hours), dtype=np.int8)


def usable_features(x: FeatureMatrix) -> npt.NDArray[np.int64]:
    """Columns with at least two distinct values in the training rows (an all-missing column cannot be split on)."""
    keep = []
    for j in range(x.shape[1]):
        column = x[:, j]
        present = column[~np.isnan(column)]
        if present.size and present.min() != present.max():
            keep.append(j)
    return np.array(keep, dtype=np.int64)


def _fit(
    candidate: Candidate,
    x: FeatureMatrix,
    y: npt.NDArray[np.int8],
    base_weight: npt.NDArray[np.float64],
    x_val: FeatureMatrix,
    y_val: npt.NDArray[np.int8],
    *,
    seed: int,
    max_iter: int,
) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(
        learning_rate=candidate.learning_rate,
        max_leaf_nodes=candidate.max_leaf_nodes,
        max_depth=candidate.max_depth,
        l2_regularization=candidate.l2_regularization,
        min_samples_leaf=candidate.min_samples_leaf,
        max_iter=max_iter,
        # Early stopping on the patient-level validation split passed below, not on a random slice of rows.
        early_stopping=True,
        scoring="loss",
        n_iter_no_change=15,
        random_state=seed,
    )
    weight = base_weight * np.where(y == 1, candidate.positive_weight, 1.0)
    weight_val = np.where(y_val == 1, candidate.positive_weight, 1.0)
    # Any sample weight sends scikit-learn's binning down a weighted-percentile path that is orders of magnitude
    # slower, so unit weights are passed as None.
    if np.all(weight == 1.0) and np.all(weight_val == 1.0):
        model.fit(x, y, X_val=x_val, y_val=y_val)
    else:
        model.fit(x, y, sample_weight=weight, X_val=x_val, y_val=y_val, sample_weight_val=weight_val)
    return model


def tree_limit(candidate: Candidate, max_iter: int, budget: float | None) -> int:
    """Most trees to fit for a candidate: `max_iter`, and for a depth-capped one no more than the budget pays for
    when every row meets `max_depth` tests in every tree."""
    if candidate.max_depth is None or budget is None:
        return max_iter
    return max(1, min(max_iter, int(budget // candidate.max_depth)))


def node_visits_per_row(onnx_bytes: bytes, x: FeatureMatrix) -> float:
    """Mean number of split tests a row of `x` meets over all the trees of an exported ensemble."""
    splits = read_split_tests(onnx_bytes)
    if splits is None:  # pragma: no cover - export_onnx always writes one tree-ensemble node
        raise ValueError("the exported model is not one tree-ensemble node")
    return float(splits.visits(x).mean()) if len(x) else 0.0


def export_onnx(model: HistGradientBoostingClassifier, n_features: int) -> bytes:
    """ONNX bytes of the classifier, probabilities as a plain tensor (no ZipMap) for batch scoring."""
    sample = np.zeros((1, n_features), dtype=np.float32)
    with warnings.catch_warnings():
        # skl2onnx writes the trees' missing-value flags as booleans into an INTS attribute; protobuf 6 only warns
        # (the reason protobuf<7 is pinned). The flags are still stored as 0/1, which the parity check confirms.
        warnings.filterwarnings("ignore", message=".*Expected an int, got a boolean", category=DeprecationWarning)
        onx = to_onnx(model, sample, options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    return bytes(onx.SerializeToString())


def onnx_probabilities(onnx_bytes: bytes, x: FeatureMatrix) -> npt.NDArray[np.float32]:
    session = ort.InferenceSession(onnx_bytes, session_options(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], {"X": np.ascontiguousarray(x)})[0], dtype=np.float32)[:, 1]


def check_parity(model: HistGradientBoostingClassifier, onnx_bytes: bytes, x: FeatureMatrix) -> float:
    """Largest |ONNX - scikit-learn| probability over the rows; raises ParityError above the tolerance."""
    reference = model.predict_proba(x)[:, 1]
    worst = float(np.max(np.abs(onnx_probabilities(onnx_bytes, x) - reference))) if len(x) else 0.0
    if worst > PARITY_TOLERANCE:
        raise ParityError(f"ONNX export differs from scikit-learn by {worst:.3g} (tolerance {PARITY_TOLERANCE})")
    return worst


def _metrics(
    labels: npt.NDArray[np.int8], scores: npt.NDArray[np.float32], starts: npt.NDArray[np.int64], threshold: float
) -> dict[str, float]:
    both = len(np.unique(labels)) == 2
    return {
        "auroc": hourly_auroc(labels, scores) if both else float("nan"),
        "auprc": hourly_auprc(labels, scores) if both else float("nan"),
        "normalised_utility": normalised_utility(labels, scores >= threshold, starts),
        "rows": float(len(labels)),
        "stays": float(len(starts)),
    }


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "polars", "protobuf"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - every one is a project dependency
            versions[name] = "absent"
    return versions


def _load_table(data_path: Path) -> pl.DataFrame:
    from clinical.physionet import load_table  # imported here: the loader is only needed when training

    return load_table(data_path)


def train(
    data_path: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    model_id: str = "sepsis-hgb",
    version: str = "1.0.0",
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    max_iter: int = 400,
    negative_fraction: float = 1.0,
    parity_rows: int = 20_000,
    threads: int | None = None,
    node_visit_budget: float | None = NODE_VISIT_BUDGET,
    progress: bool = True,
) -> TrainResult:
    """Train, choose, export, check and register a sepsis model; returns the registry folder and its card.

    `negative_fraction` < 1 keeps that share of the rows of non-septic training stays, weighted up to compensate
    (validation and test rows are never sampled). `threads` caps OpenMP threads while fitting. The chosen
    candidate is the best on validation utility among those whose mean split tests per validation row stay within
    `node_visit_budget` (None: no limit).
    """
    if not 0 < negative_fraction <= 1:
        raise ValueError("negative_fraction must be in (0, 1]")
    steps = tqdm(total=5 + len(candidates), desc="training", disable=not progress, unit="step")
    steps.set_postfix_str("loading stays")
    table = _load_table(data_path)
    grid = grid_from_table(table)
    steps.update()
    steps.set_postfix_str("extracting features")
    features = extract(grid)
    labels = table["sepsis_label"].cast(pl.Int8).fill_null(0).to_numpy()
    stay_of_row = grid.stay_of_row
    septic = np.zeros(len(grid.starts), dtype=bool)
    septic[stay_of_row[labels == 1]] = True
    split = split_stays(stay_of_row, septic, seed)
    columns = usable_features(features[split.train])
    if len(np.unique(labels[split.train])) < 2:
        raise ValueError("the training split needs both septic and non-septic hours")
    rng = np.random.default_rng(seed)
    # Positives of every label variant are kept: a row positive under any lead lies in a septic stay.
    septic_row = septic[stay_of_row]
    sampled = split.train & (septic_row | (rng.random(len(labels)) < negative_fraction))
    x_train, x_val, x_test = (
        np.ascontiguousarray(features[m][:, columns]) for m in (sampled, split.validation, split.test)
    )
    negative_weight = np.where(septic_row[sampled], 1.0, 1.0 / negative_fraction)
    y_val, y_test = labels[split.validation], labels[split.test]
    val_starts = starts_within(stay_of_row, split.validation)
    test_starts = starts_within(stay_of_row, split.test)
    steps.update()

    best: tuple[float, Candidate, HistGradientBoostingClassifier, bytes, float] | None = None
    tried: list[dict[str, Any]] = []
    for candidate in candidates:
        steps.set_postfix_str(f"fitting {candidate}")
        target = lead_label(labels, stay_of_row, grid.starts, candidate.label_lead_hours)
        # OpenMP threads spin while waiting on busy cores: a small or shared machine trains faster on fewer.
        with threadpool_limits(limits=threads):
            model = _fit(
                candidate,
                x_train,
                target[sampled],
                negative_weight,
                x_val,
                target[split.validation],
                seed=seed,
                max_iter=tree_limit(candidate, max_iter, node_visit_budget),
            )
        _, utility = best_threshold(y_val, model.predict_proba(x_val)[:, 1], val_starts)
        # The cost is counted on the export, as onnxruntime will walk it.
        onnx_bytes = export_onnx(model, len(columns))
        visits = node_visits_per_row(onnx_bytes, x_val)
        log.info(
            "candidate %s: %d iterations, %.1f node visits a row, validation utility %.4f",
            candidate,
            model.n_iter_,
            visits,
            utility,
        )
        tried.append(
            {
                **asdict(candidate),
                "iterations": int(model.n_iter_),
                "node_visits_per_row": visits,
                "validation_utility": utility,
            }
        )
        within = node_visit_budget is None or visits <= node_visit_budget
        if within and (best is None or utility > best[0]):
            best = (utility, candidate, model, onnx_bytes, visits)
        steps.update()
    if best is None:
        if not tried:
            raise ValueError("no candidate settings to train")
        cheapest = min(t["node_visits_per_row"] for t in tried)
        raise ValueError(
            f"no candidate fits the budget of {node_visit_budget:g} node visits a row "
            f"(the cheapest needs {cheapest:.1f})"
        )
    _, chosen, model, onnx_bytes, visits = best

    steps.set_postfix_str("checking the ONNX export")
    parity_idx = rng.choice(len(x_test), size=min(parity_rows, len(x_test)), replace=False)
    parity = check_parity(model, onnx_bytes, x_test[parity_idx])
    steps.update()

    steps.set_postfix_str("choosing threshold")
    # The threshold and every reported figure come from the ONNX model: it is what will run.
    p_val = onnx_probabilities(onnx_bytes, x_val)
    p_test = onnx_probabilities(onnx_bytes, x_test)
    threshold, _ = best_threshold(y_val, p_val, val_starts)
    steps.update()

    steps.set_postfix_str("writing registry entry")
    medians = _medians(x_train, rng)
    card = ModelCard(
        model_id=model_id,
        version=version,
        sha256="",
        created=datetime.now(tz=UTC).date().isoformat(),
        intended_use=INTENDED_USE,
        features=tuple(
            CardFeature(
                name=FEATURES[j].name,
                transform=FEATURES[j].transform,
                kinds=FEATURES[j].kinds,
                loinc=FEATURES[j].loinc,
                unit=FEATURES[j].unit,
                window_hours=FEATURES[j].window_hours,
                median=medians[i],
            )
            for i, j in enumerate(columns)
        ),
        threshold=threshold,
        threshold_method="maximises PhysioNet 2019 normalised utility on the validation split (ONNX scores)",
        # "moderate" is the factor of two below the alerting threshold: worth a confirming test, not an interruption
        # (the bundled policy holds it for an hour or until a lactate).
        bands=(Band("high", threshold), Band("moderate", threshold / 2), Band("low", 0.0)),
        key_inputs=KEY_INPUTS,
        training_data=_training_data(data_path, grid.starts, septic, labels, split, seed),
        metrics={
            "validation": _metrics(y_val, p_val, val_starts, threshold),
            "test": _metrics(y_test, p_test, test_starts, threshold),
        },
        hyperparameters={
            **asdict(chosen),
            "iterations": int(model.n_iter_),
            "node_visits_per_row": visits,
            "node_visit_budget": node_visit_budget,
            "seed": seed,
            "negative_fraction": negative_fraction,
            "candidates": tried,
            "parity_max_abs": parity,
        },
        library_versions=_library_versions(),
        notes=_notes(chosen),
    )
    directory = write_entry(out_dir, card, onnx_bytes)
    steps.update()
    steps.close()
    # Re-read: the written card carries the hash.
    return TrainResult(directory=directory, card=ModelCard.read(directory), parity_max_abs=parity)


def _notes(chosen: Candidate) -> str:
    notes = ["The score is the probability of the (shifted) PhysioNet label for the current hour."]
    if chosen.positive_weight != 1.0:
        notes.append(
            f"Positive hours were weighted x{chosen.positive_weight:g} in training, so scores overstate "
            "absolute risk; use the threshold and bands, not the raw value, to act."
        )
    if chosen.label_lead_hours:
        notes.append(f"Trained on a label starting {chosen.label_lead_hours} h before SepsisLabel.")
    notes.append(
        "Metrics are hourly, on a held-out patient-level split of one hospital system; expect lower "
        "utility on other hospitals (the challenge's unseen system scored about -0.12 for the winner)."
    )
    return " ".join(notes)


def _medians(x: FeatureMatrix, rng: np.random.Generator, sample: int = 200_000) -> list[float | None]:
    rows = x[rng.choice(len(x), size=min(sample, len(x)), replace=False)]
    out: list[float | None] = []
    for j in range(rows.shape[1]):
        present = rows[:, j][~np.isnan(rows[:, j])]
        out.append(float(np.median(present)) if present.size else None)
    return out


def _training_data(
    data_path: Path,
    starts: npt.NDArray[np.int64],
    septic: npt.NDArray[np.bool_],
    labels: npt.NDArray[np.int8],
    split: Split,
    seed: int,
) -> dict[str, Any]:
    return {
        "source": data_path.name,
        "description": "PhysioNet/CinC Challenge 2019 hourly ICU stays (CC BY 4.0)",
        "stays": len(starts),
        "rows": len(labels),
        "septic_stays": int(septic.sum()),
        "positive_rows": int(labels.sum()),
        "split": "patient-level, stratified on sepsis: 70% train, 15% validation, 15% test",
        "split_seed": seed,
        "rows_per_split": {
            "train": int(split.train.sum()),
            "validation": int(split.validation.sum()),
            "test": int(split.test.sum()),
        },
    }
