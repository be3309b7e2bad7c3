"""`OnnxModelScorer`: a registry model behind the `Scorer` port, scoring the last hour of a live ICU stay.

The live context goes through the same hourly grid and extractor as training and replay; the model scores the grid's
last row. Explanations are occlusion contributions: how much the probability moves when one input is set back to
its training median, all variants computed in one onnxruntime call.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import datetime

import numpy as np
import numpy.typing as npt

from clinical.model import ClinicalContext
from scoring.features.catalogue import FEATURE_INDEX, FEATURES
from scoring.features.extract import extract
from scoring.features.grid import HourlyGrid, grid_from_context
from scoring.model.registry import LoadedModel, ModelRegistry
from scoring.port import Contribution, FeatureValue, RiskOutput

UNKNOWN_BAND = "unknown"
ICU_ADMISSION = "icu_admission_time"


HOSPITAL_ADMISSION_FEATURE = "hosp_adm_hours"


def encounter_start(context: ClinicalContext) -> datetime | None:
    """The start of the context's encounter."""
    return context.encounter.start_utc if context.encounter is not None else None


def unit_admission(context: ClinicalContext) -> datetime | None:
    """ICU admission: when the patient entered the current unit (from the encounter's location periods), else the
    encounter's own start."""
    encounter = context.encounter
    if encounter is None:
        return None
    return encounter.unit_start_utc or encounter.start_utc


def hospital_admission(context: ClinicalContext) -> datetime | None:
    """Hospital admission: the encounter's start, but only when its location periods tell the unit admission apart
    from it. Otherwise the two cannot be told apart and the answer is unknown (None), never "the same instant"."""
    encounter = context.encounter
    if encounter is None or encounter.unit_start_utc is None:
        return None
    return encounter.start_utc


def score_grid(model: LoadedModel, grid: HourlyGrid) -> npt.NDArray[np.float32]:
    """Probability for every row of a grid (batch replay): one extraction, one onnxruntime call."""
    return model.predict_features(extract(grid))


class OnnxModelScorer:
    """Scores one model version; several can run side by side (e.g. live and shadow versions)."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        icu_admission: Callable[[ClinicalContext], datetime | None] = unit_admission,
        hospital_admission: Callable[[ClinicalContext], datetime | None] | None = hospital_admission,
        top_contributions: int = 5,
    ) -> None:
        self._model = model
        self._icu_admission = icu_admission
        self._hospital_admission = hospital_admission
        self._top = top_contributions
        card = model.card
        self._medians = np.array([math.nan if f.median is None else f.median for f in card.features], dtype=np.float32)
        self._input_kinds = sorted({k for f in card.features for k in FEATURES[FEATURE_INDEX[f.name]].kinds})
        # The feature of an input kind with no observation never varies: built once and shared (it is frozen, so a
        # shared instance is indistinguishable from a fresh one).
        self._unobserved = {kind: FeatureValue(kind, None) for kind in self._input_kinds}
        self._splits = model.splits
        # Which way each split sends the medians: the same on every call, so read once.
        self._median_branches = None if model.splits is None else model.splits.branches(self._medians)
        names = [f.name for f in card.features]
        self._hospital_column = names.index(HOSPITAL_ADMISSION_FEATURE) if HOSPITAL_ADMISSION_FEATURE in names else None

    @property
    def scorer_id(self) -> str:
        return self._model.card.model_id

    @property
    def version(self) -> str:
        return self._model.card.version

    def score(self, context: ClinicalContext, as_of: datetime) -> list[RiskOutput]:
        card = self._model.card
        admitted = self._icu_admission(context)
        if admitted is None or admitted > as_of:
            return [
                RiskOutput(
                    scorer_id=card.model_id,
                    scorer_version=card.version,
                    score=None,
                    band=UNKNOWN_BAND,
                    as_of=as_of,
                    input_hash=self._hash(np.zeros((1, 0), dtype=np.float32)),
                    partial=True,
                    missing=(ICU_ADMISSION,),
                )
            ]
        hospital = self._hospital_admission(context) if self._hospital_admission is not None else None
        grid, latest = grid_from_context(context, admitted, as_of, hospital_admission_utc=hospital)
        inputs = self._model.select(extract(grid, np.array([grid.values.shape[0] - 1])))
        if hospital is None and self._hospital_column is not None:
            # Every training row knew its hospital admission, so an unknown one is imputed with the training median
            # (neutral in the explanation) rather than left missing (a branch the trees barely learnt) or set to the
            # unit admission (0 h, which pulled live scores down by about a quarter of the probability).
            inputs[0, self._hospital_column] = self._medians[self._hospital_column]
        probabilities, points, occluded = self._occlusion(inputs[0])
        probability = float(probabilities[0])
        features: dict[str, FeatureValue] = {}
        for kind in self._input_kinds:
            obs = latest.get(kind)
            features[kind] = (
                FeatureValue(kind, obs.value, obs.unit, obs.effective_utc, obs.provenance)
                if obs is not None
                else self._unobserved[kind]
            )
        features["icu_los_hours"] = FeatureValue("icu_los_hours", float(grid.hour[-1]), "h")
        missing = tuple(k for k in card.key_inputs if k not in latest)
        return [
            RiskOutput(
                scorer_id=card.model_id,
                scorer_version=card.version,
                score=probability,
                band=card.band_of(probability),
                as_of=as_of,
                input_hash=self._hash(inputs),
                explanation=self._explain(inputs[0], points, occluded),
                features=features,
                partial=bool(missing),
                missing=missing,
            )
        ]

    def _occlusion(
        self, row: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Probability of the row, then how much it moves with each input in turn set to its median (one batch), and
        the inputs that were run (ascending; every other input's points are exactly 0).

        Only inputs whose median some split of the ensemble tells apart from the row's value are run: for any other
        input every tree takes the same path, so its row would score the same bits and its contribution is exactly 0.
        """
        width = len(row)
        splits = self._splits
        occluded = np.arange(width) if splits is None else splits.moved(row, self._medians, self._median_branches)
        batch = np.repeat(row[None, :], len(occluded) + 1, axis=0)
        batch[np.arange(1, len(occluded) + 1), occluded] = self._medians[occluded]
        probabilities = self._model.predict(batch)
        points = np.zeros(width, dtype=np.float32)
        points[occluded] = probabilities[0] - probabilities[1:]
        return probabilities, points, occluded

    def _explain(
        self, row: npt.NDArray[np.float32], points: npt.NDArray[np.float32], occluded: npt.NDArray[np.int64]
    ) -> tuple[Contribution, ...]:
        """The largest moves first (ties in input order), up to the first input that moved nothing."""
        features = self._model.card.features
        # Only occluded inputs can have moved, and they come in input order, so a stable sort of them by -|points|
        # ranks them as a stable argsort of every input would. As Python floats (exact for float32): numpy's calls
        # cost more than sorting a few dozen numbers.
        candidates = occluded.tolist()
        moves = points[occluded].tolist()
        values = row[occluded].tolist()
        ranked = sorted(range(len(candidates)), key=lambda k: _rank(moves[k]))[: self._top]
        lines = []
        for k in ranked:
            i, by, x = candidates[k], moves[k], values[k]
            if by == 0:
                break
            f = features[i]
            value = "missing" if math.isnan(x) else f"{x:.4g} {f.unit}"
            typical = "n/a" if f.median is None else f"{f.median:.4g} {f.unit}"
            lines.append(Contribution(f.name, by, f"{f.transform}: {value} (training median {typical})"))
        return tuple(lines)

    def _hash(self, inputs: npt.NDArray[np.float32]) -> str:
        digest = hashlib.sha256(f"{self.scorer_id}|{self.version}|".encode())
        digest.update(np.ascontiguousarray(inputs, dtype=np.float32).tobytes())
        return digest.hexdigest()


def _rank(points: float) -> float:
    """Sort key of a move: largest first; NaN after everything, where numpy's argsort puts it."""
    return math.inf if math.isnan(points) else -abs(points)


def latest_model_scorers(registry: ModelRegistry | None = None) -> list[OnnxModelScorer]:
    """The live scorer of every registered model: its latest version.

    The ICU admission is the start of the current unit's location periods (else the encounter's start); the hospital
    admission is the encounter's start when the two can be told apart, else the training median (see `score`).
    """
    registry = registry or ModelRegistry()
    return [
        OnnxModelScorer(registry.load(model_id))
        for model_id in sorted({model_id for model_id, _ in registry.entries()})
    ]
