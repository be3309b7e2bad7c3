"""The registry loads a model only when its bytes and its input schema are the ones its card promises."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring.model.card import ModelCard
from scoring.model.registry import ModelRefused, ModelRegistry, RefusalReason, load_model


def _copy_entry(tiny_model, root: Path, version: str = "1.0.0") -> Path:  # type: ignore[no-untyped-def]
    target = root / "sepsis-hgb" / version
    shutil.copytree(tiny_model.directory, target)
    if version != tiny_model.card.version:
        card = json.loads((target / "card.json").read_text())
        card["version"] = version
        (target / "card.json").write_text(json.dumps(card))
    return target


def _edit_card(directory: Path, edit) -> None:  # type: ignore[no-untyped-def]
    card = json.loads((directory / "card.json").read_text())
    edit(card)
    (directory / "card.json").write_text(json.dumps(card))


def test_a_model_whose_bytes_changed_is_refused_with_both_hashes(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    entry = _copy_entry(tiny_model, tmp_path)
    model = entry / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelRefused, match="sha256") as refused:
        load_model(entry)
    assert refused.value.reason is RefusalReason.HASH_MISMATCH
    assert tiny_model.card.sha256 in str(refused.value)


def test_a_card_needing_features_the_extractor_lacks_is_refused_naming_them(  # type: ignore[no-untyped-def]
    tiny_model, tmp_path: Path
) -> None:
    entry = _copy_entry(tiny_model, tmp_path)

    def rename(card: dict) -> None:  # type: ignore[type-arg]
        card["features"][0]["name"] = "heart_rate__max_48h"
        card["features"][1]["name"] = "procalcitonin"

    _edit_card(entry, rename)
    with pytest.raises(ModelRefused) as refused:
        load_model(entry)
    assert refused.value.reason is RefusalReason.UNKNOWN_FEATURES
    assert "heart_rate__max_48h" in str(refused.value) and "procalcitonin" in str(refused.value)


def test_a_card_expecting_another_unit_is_refused(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    entry = _copy_entry(tiny_model, tmp_path)
    _edit_card(entry, lambda card: card["features"][0].update(unit="mmol/L"))
    with pytest.raises(ModelRefused, match=tiny_model.card.features[0].name) as refused:
        load_model(entry)
    assert refused.value.reason is RefusalReason.UNIT_MISMATCH


def test_a_card_listing_fewer_features_than_the_model_reads_is_refused(  # type: ignore[no-untyped-def]
    tiny_model, tmp_path: Path
) -> None:
    entry = _copy_entry(tiny_model, tmp_path)
    _edit_card(entry, lambda card: card["features"].pop())
    with pytest.raises(ModelRefused) as refused:
        load_model(entry)
    assert refused.value.reason is RefusalReason.INPUT_WIDTH


def test_an_entry_without_its_model_file_is_refused(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    entry = _copy_entry(tiny_model, tmp_path)
    (entry / "model.onnx").unlink()
    with pytest.raises(ModelRefused) as refused:
        load_model(entry)
    assert refused.value.reason is RefusalReason.MISSING_FILE


def test_several_versions_load_side_by_side_and_the_latest_is_the_default(  # type: ignore[no-untyped-def]
    tiny_model, tmp_path: Path
) -> None:
    for version in ("1.0.0", "1.10.0", "1.2.0"):
        _copy_entry(tiny_model, tmp_path, version)
    registry = ModelRegistry(tmp_path)
    assert registry.versions("sepsis-hgb") == ["1.0.0", "1.2.0", "1.10.0"]
    loaded = registry.load_all()
    assert [m.card.version for m in loaded] == ["1.0.0", "1.2.0", "1.10.0"]
    assert len({id(m.session) for m in loaded}) == 3
    assert registry.load("sepsis-hgb").card.version == "1.10.0"
    assert registry.load("sepsis-hgb", "1.2.0") is loaded[1]


def test_an_unknown_model_or_version_is_reported_as_not_found(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _copy_entry(tiny_model, tmp_path)
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ModelRefused) as refused:
        registry.load("sepsis-hgb", "9.9.9")
    assert refused.value.reason is RefusalReason.NOT_FOUND
    with pytest.raises(ModelRefused):
        registry.load("other-model")


def test_a_card_round_trips_through_json(tiny_model) -> None:  # type: ignore[no-untyped-def]
    assert ModelCard.from_json(tiny_model.card.to_json()) == tiny_model.card
