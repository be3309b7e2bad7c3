"""The model card stored beside each `model.onnx`: identity, hash, input schema, threshold, metrics and provenance."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CARD_FILE = "card.json"
MODEL_FILE = "model.onnx"


@dataclass(frozen=True, slots=True)
class CardFeature:
    """One input column of the model, in order, with what a reviewer needs to know about it."""

    name: str
    transform: str
    kinds: tuple[str, ...]
    loinc: tuple[str, ...]
    unit: str
    window_hours: int | None
    # Median over the training rows (NaN-free rows only); the reference value for explanations.
    median: float | None


@dataclass(frozen=True, slots=True)
class Band:
    name: str
    min_score: float


@dataclass(frozen=True, slots=True)
class ModelCard:
    model_id: str
    version: str
    sha256: str
    created: str
    intended_use: str
    features: tuple[CardFeature, ...]
    threshold: float
    threshold_method: str
    # Highest band first: a score gets the first band whose `min_score` it reaches.
    bands: tuple[Band, ...]
    # Kinds whose absence makes an output partial.
    key_inputs: tuple[str, ...]
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    # Caveats a reader of a score must know (e.g. class weighting that inflates probabilities).
    notes: str = ""
    input_name: str = "X"
    probability_output: str = "probabilities"

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def band_of(self, score: float) -> str:
        for band in self.bands:
            if score >= band.min_score:
                return band.name
        return self.bands[-1].name if self.bands else "unbanded"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        raw = json.loads(text)
        try:
            features = tuple(
                CardFeature(
                    name=f["name"],
                    transform=f["transform"],
                    kinds=tuple(f["kinds"]),
                    loinc=tuple(f["loinc"]),
                    unit=f["unit"],
                    window_hours=f["window_hours"],
                    median=f["median"],
                )
                for f in raw.pop("features")
            )
            bands = tuple(Band(b["name"], float(b["min_score"])) for b in raw.pop("bands"))
            key_inputs = tuple(raw.pop("key_inputs"))
            return cls(features=features, bands=bands, key_inputs=key_inputs, **raw)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"model card is malformed: {exc}") from exc

    @classmethod
    def read(cls, directory: Path) -> ModelCard:
        return cls.from_json((directory / CARD_FILE).read_text(encoding="utf-8"))
