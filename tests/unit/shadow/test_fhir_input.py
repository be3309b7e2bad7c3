"""Reading FHIR replay input: files and folders, Bundles opened, resources grouped by patient, unit mappings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shadow.fhir_input import FhirReplayError, by_patient, fhir_stays, is_fhir, read_resources, read_units


def _observation(patient: str, when: str, value: float) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def _bundle(*resources: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def test_ndjson_json_and_folders_of_bundles_are_fhir_but_a_physionet_folder_is_not(tmp_path: Path) -> None:
    (tmp_path / "fhir").mkdir()
    (tmp_path / "fhir" / "a.json").write_text(json.dumps(_bundle()))
    (tmp_path / "psv").mkdir()
    (tmp_path / "psv" / "p1.psv").write_text("HR|ICULOS\n80|1\n")

    assert is_fhir(tmp_path / "x.ndjson")
    assert is_fhir(tmp_path / "fhir")
    assert not is_fhir(tmp_path / "psv")
    assert not is_fhir(tmp_path / "set.tar.gz")


def test_bundles_are_opened_nested_ones_too_and_resources_grouped_by_patient(tmp_path: Path) -> None:
    inner = _bundle(_observation("b", "2024-03-01T09:00:00Z", 90))
    outer = _bundle({"resourceType": "Patient", "id": "a"}, _observation("a", "2024-03-01T09:00:00Z", 80), inner)
    (tmp_path / "one.json").write_text(json.dumps(outer))
    lines = [_observation("a", "2024-03-01T10:00:00Z", 85), {"resourceType": "Patient", "id": "b"}]
    (tmp_path / "two.ndjson").write_text("\n".join(json.dumps(r) for r in lines) + "\n\n")

    groups = by_patient(read_resources(tmp_path))

    assert sorted(groups) == ["a", "b"]
    assert [r["resourceType"] for r in groups["a"]] == ["Patient", "Observation", "Observation"]
    assert [r["resourceType"] for r in groups["b"]] == ["Observation", "Patient"]


def test_a_patient_without_an_encounter_is_admitted_at_the_first_observation(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    rows = [_observation("a", "2024-03-01T09:10:00Z", 80), _observation("a", "2024-03-01T12:20:00Z", 95)]
    path.write_text("\n".join(json.dumps(r) for r in rows))

    (stay,) = fhir_stays(path)

    assert stay.admitted.isoformat() == "2024-03-01T09:10:00+00:00"
    assert stay.until.isoformat() == "2024-03-01T12:20:00+00:00"
    assert (stay.unit.unit, stay.unit.unit_type) == ("unknown", "unknown")


def test_data_with_no_observations_cannot_be_replayed(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "a"}))

    with pytest.raises(FhirReplayError, match="no patient"):
        fhir_stays(path)


def test_a_units_mapping_names_unit_and_type_and_needs_its_columns(tmp_path: Path) -> None:
    good, bad = tmp_path / "units.csv", tmp_path / "bad.csv"
    good.write_text("patient,unit,unit_type\na,MICU,icu\nb,Ward 4,ward\nc,SICU,\n")
    bad.write_text("id,ward\na,MICU\n")

    units = read_units(good)

    assert {k: (u.unit, u.unit_type) for k, u in units.items()} == {
        "a": ("MICU", "icu"),
        "b": ("Ward 4", "ward"),
        "c": ("SICU", "icu"),
    }
    with pytest.raises(FhirReplayError, match="patient and unit"):
        read_units(bad)
