"""The model registry: `<root>/<model_id>/<version>/model.onnx + card.json`, loaded only when hash and schema check out.

Several versions of a model can be loaded side by side (live and shadow); each gets its own onnxruntime session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from scoring.features.catalogue import FEATURE_INDEX, FEATURES
from scoring.features.extract import FeatureMatrix
from scoring.model.card import CARD_FILE, MODEL_FILE, ModelCard
from scoring.model.splits import SplitTests, read_split_tests

# The models shipped with the package.
BUNDLED_MODELS = Path(__file__).resolve().parents[1] / "models"


class RefusalReason(StrEnum):
    MISSING_FILE = "missing-file"
    MALFORMED_CARD = "malformed-card"
    HASH_MISMATCH = "hash-mismatch"
    UNKNOWN_FEATURES = "unknown-features"
    UNIT_MISMATCH = "unit-mismatch"
    INPUT_WIDTH = "input-width"
    NOT_FOUND = "not-found"


class ModelRefused(Exception):  # noqa: N818 -- a refusal is the domain's word; "Error" would hide its reason
    """A model that must not be used, with the reason as a value."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def session_options() -> ort.SessionOptions:
    """One intra-op thread, sequential: scoring runs beside the web workers and must not fan out over all cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A verified model: its card, its session and where its input columns sit in the extractor's matrix."""

    card: ModelCard
    session: ort.InferenceSession
    columns: npt.NDArray[np.int64]
    directory: Path
    # The ensemble's split tests, when the graph is one tree-ensemble node (see `scoring.model.splits`).
    splits: SplitTests | None = None

    def select(self, features: FeatureMatrix) -> FeatureMatrix:
        """The model's input columns out of a full extractor matrix."""
        return np.ascontiguousarray(features[:, self.columns], dtype=np.float32)

    def predict(self, inputs: FeatureMatrix) -> npt.NDArray[np.float32]:
        """Probability of the positive class for each row of model inputs (already selected), in one run call."""
        outputs = self.session.run([self.card.probability_output], {self.card.input_name: inputs})
        return np.asarray(outputs[0], dtype=np.float32)[:, 1]

    def predict_features(self, features: FeatureMatrix) -> npt.NDArray[np.float32]:
        return self.predict(self.select(features))


def check_schema(card: ModelCard) -> npt.NDArray[np.int64]:
    """Column indices of the card's features in the extractor's matrix; refuses features the extractor lacks."""
    unknown = [name for name in card.feature_names if name not in FEATURE_INDEX]
    if unknown:
        raise ModelRefused(
            RefusalReason.UNKNOWN_FEATURES,
            f"model {card.model_id} {card.version} needs features the extractor cannot produce: {', '.join(unknown)}",
        )
    wrong_unit = [f.name for f in card.features if FEATURES[FEATURE_INDEX[f.name]].unit != f.unit]
    if wrong_unit:
        raise ModelRefused(
            RefusalReason.UNIT_MISMATCH,
            f"model {card.model_id} {card.version} expects other units for features: {', '.join(wrong_unit)}",
        )
    return np.array([FEATURE_INDEX[name] for name in card.feature_names], dtype=np.int64)


def load_model(directory: Path) -> LoadedModel:
    """Load one registry entry, refusing it on a missing file, a hash mismatch or a schema the extractor lacks."""
    model_path = directory / MODEL_FILE
    for needed in (model_path, directory / CARD_FILE):
        if not needed.is_file():
            raise ModelRefused(RefusalReason.MISSING_FILE, f"registry entry {directory} has no {needed.name}")
    try:
        card = ModelCard.read(directory)
    except ValueError as exc:
        raise ModelRefused(RefusalReason.MALFORMED_CARD, f"{directory / CARD_FILE}: {exc}") from exc
    # Read once: the bytes whose hash is checked are the bytes the session and the split tests are built from.
    model_bytes = model_path.read_bytes()
    actual = hashlib.sha256(model_bytes).hexdigest()
    if actual != card.sha256:
        raise ModelRefused(
            RefusalReason.HASH_MISMATCH,
            f"model {card.model_id} {card.version}: sha256 of {MODEL_FILE} is {actual}, the card says {card.sha256}; "
            "refusing to load a model that is not the one the card describes",
        )
    columns = check_schema(card)
    session = ort.InferenceSession(model_bytes, session_options(), providers=["CPUExecutionProvider"])
    width = session.get_inputs()[0].shape[1]
    if isinstance(width, int) and width != len(columns):
        raise ModelRefused(
            RefusalReason.INPUT_WIDTH,
            f"model {card.model_id} {card.version} takes {width} inputs but its card lists {len(columns)} features",
        )
    splits = read_split_tests(model_bytes)
    return LoadedModel(card=card, session=session, columns=columns, directory=directory, splits=splits)


def write_entry(root: Path, card: ModelCard, onnx_bytes: bytes) -> Path:
    """Write `model.onnx` and its card (with the hash filled in) under `root/<id>/<version>/`; returns the folder."""
    directory = root / card.model_id / card.version
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(onnx_bytes)
    card = replace(card, sha256=sha256_of(directory / MODEL_FILE))
    (directory / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    return directory


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.replace("-", ".").split("."))


class ModelRegistry:
    """Registry entries under one root folder; loaded models are kept, so each version has one session."""

    def __init__(self, root: Path = BUNDLED_MODELS) -> None:
        self.root = root
        self._loaded: dict[tuple[str, str], LoadedModel] = {}

    def entries(self) -> list[tuple[str, str]]:
        """(model_id, version) of every entry, versions in ascending order."""
        found = [(card.parent.parent.name, card.parent.name) for card in self.root.glob(f"*/*/{CARD_FILE}")]
        return sorted(found, key=lambda e: (e[0], _version_key(e[1])))

    def versions(self, model_id: str) -> list[str]:
        return [v for m, v in self.entries() if m == model_id]

    def load(self, model_id: str, version: str | None = None) -> LoadedModel:
        """One version (the latest when `version` is None), verified on first load."""
        if version is None:
            versions = self.versions(model_id)
            if not versions:
                raise ModelRefused(RefusalReason.NOT_FOUND, f"no model {model_id} under {self.root}")
            version = versions[-1]
        key = (model_id, version)
        if key not in self._loaded:
            directory = self.root / model_id / version
            if not directory.is_dir():
                raise ModelRefused(RefusalReason.NOT_FOUND, f"no model {model_id} version {version} under {self.root}")
            model = load_model(directory)
            if (model.card.model_id, model.card.version) != key:
                names = f"{model.card.model_id} {model.card.version}"
                raise ModelRefused(RefusalReason.MALFORMED_CARD, f"card in {directory} names {names}")
            self._loaded[key] = model
        return self._loaded[key]

    def load_all(self) -> list[LoadedModel]:
        return [self.load(m, v) for m, v in self.entries()]
