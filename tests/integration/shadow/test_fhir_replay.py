"""A FHIR replay decides like the PhysioNet replay of the same stays: real set A stays written both ways."""

from __future__ import annotations

import json
import math
import tarfile
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from clinical.codes import BY_KIND
from clinical.fhir_time import years_between
from clinical.physionet import iter_stays
from scoring.model.registry import BUNDLED_MODELS, LoadedModel, ModelRegistry
from shadow.candidates import Candidate, parse_candidate
from shadow.passes import ACTION_CODES, ICU_ADMISSION
from shadow.replay import BURDEN_METRICS, replay

# Two stays with lactates, surfaced and delayed alerts: one in the MICU (the unit comes from the Encounter's
# location), one in the SICU (the Encounter names only a bed; the unit comes from a mapping file).
MICU_STAY, SICU_STAY = "p000084", "p000081"


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return ModelRegistry(BUNDLED_MODELS).load("sepsis-hgb")


@pytest.fixture(scope="module")
def arms(model: LoadedModel) -> list[Candidate]:
    threshold = model.card.threshold
    return [parse_candidate(s, threshold) for s in ("deterioration", "deterioration@0.03", "surface-all")]


def _raw_stays(archive_path: Path, wanted: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with tarfile.open(archive_path) as archive:
        for member in archive:
            stay = PurePosixPath(member.name).stem
            if stay in wanted:
                handle = archive.extractfile(member)
                assert handle is not None
                found[stay] = handle.read().decode()
                if len(found) == len(wanted):
                    break
    return found


def _with_column(psv: str, column: str, value: float) -> str:
    """The stay with one column set to `value` on every row (written exactly, so both inputs read the same)."""
    lines = psv.strip().split("\n")
    at = lines[0].split("|").index(column)
    rows = [line.split("|") for line in lines[1:]]
    for row in rows:
        row[at] = repr(value)
    return "\n".join([lines[0], *("|".join(row) for row in rows)]) + "\n"


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


Resource = dict[str, object]


def _fhir(stay_id: str, table_rows: list[Resource], unit: str) -> tuple[list[Resource], dict[str, float]]:
    """Patient, Encounter and one Observation per measured value; also the age and hospital admission (hours) the
    PhysioNet file must carry to say exactly what the FHIR resources say."""
    first = table_rows[0]
    hours = len(table_rows)
    birth = (ICU_ADMISSION - timedelta(days=round(float(first["age"]) * 365.2425))).date()  # type: ignore[arg-type]
    born = datetime(birth.year, birth.month, birth.day, tzinfo=ICU_ADMISSION.tzinfo)
    hospital = ICU_ADMISSION + timedelta(hours=float(first["hosp_adm_time"]))  # type: ignore[arg-type]
    subject = {"reference": f"Patient/{stay_id}"}
    encounter: dict[str, object] = {
        "resourceType": "Encounter",
        "id": f"enc-{stay_id}",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": subject,
        "period": {"start": _iso(hospital), "end": _iso(ICU_ADMISSION + timedelta(hours=hours))},
    }
    encounter["location"] = [
        {"location": {"display": unit}, "status": "completed", "period": {"start": _iso(ICU_ADMISSION)}}
    ]
    resources: list[dict[str, object]] = [
        {"resourceType": "Patient", "id": stay_id, "gender": first["sex"], "birthDate": birth.isoformat()},
        encounter,
    ]
    for row in table_rows:
        taken = ICU_ADMISSION + timedelta(hours=int(row["hour"]) - 1, minutes=30)  # type: ignore[call-overload]
        for kind, quantity in BY_KIND.items():
            value = row.get(kind)
            if not quantity.physionet_column or value is None or math.isnan(float(value)):  # type: ignore[arg-type]
                continue
            resources.append(
                {
                    "resourceType": "Observation",
                    "id": f"{stay_id}-{kind}-{row['hour']}",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": quantity.loinc}]},
                    "subject": subject,
                    "effectiveDateTime": _iso(taken),
                    "valueQuantity": {
                        "value": value,
                        "unit": quantity.unit,
                        "system": "http://unitsofmeasure.org",
                        "code": quantity.unit,
                    },
                }
            )
    fixed = {"Age": years_between(born, ICU_ADMISSION), "HospAdmTime": (hospital - ICU_ADMISSION) / timedelta(hours=1)}
    return resources, fixed


@pytest.fixture(scope="module")
def both_ways(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The same two stays as a PhysioNet folder and as FHIR NDJSON, with a units mapping for the second."""
    archive = shared_data / "physionet2019" / "training_setA.tar.gz"
    raw = _raw_stays(archive, {MICU_STAY, SICU_STAY})
    folder = tmp_path_factory.mktemp("replay")
    psv, fhir = folder / "psv", folder / "stays.ndjson"
    psv.mkdir()
    lines = []
    for stay_id, unit in ((MICU_STAY, "MICU"), (SICU_STAY, "Bed 12")):
        (psv / f"{stay_id}.psv").write_text(raw[stay_id])
        (stay,) = iter_stays(psv / f"{stay_id}.psv")
        resources, fixed = _fhir(stay_id, stay.table.to_dicts(), unit)
        text = raw[stay_id]
        for column, value in fixed.items():
            text = _with_column(text, column, value)
        (psv / f"{stay_id}.psv").write_text(text)
        lines += [json.dumps(r) for r in resources]
    fhir.write_text("\n".join(lines) + "\n")
    units = folder / "units.csv"
    units.write_text(f"patient,unit,unit_type\n{SICU_STAY},SICU,icu\n")
    return psv, fhir, units


def test_the_fhir_version_of_a_stay_is_decided_as_its_physionet_version(
    both_ways: tuple[Path, Path, Path], model: LoadedModel, arms: list[Candidate]
) -> None:
    psv, fhir, units = both_ways
    from_psv = replay(psv, model, arms, workers=1, bootstrap=10)
    from_fhir = replay(fhir, model, arms, workers=1, bootstrap=10, units=units)

    assert from_fhir.data.rows == from_psv.data.rows
    assert from_fhir.data.units == from_psv.data.units == ("SICU", "MICU")
    np.testing.assert_allclose(from_fhir.data.scores, from_psv.data.scores, rtol=0, atol=1e-6)
    for arm, (a, b) in enumerate(zip(from_fhir.actions, from_psv.actions, strict=True)):
        assert [ACTION_CODES[c] for c in a] == [ACTION_CODES[c] for c in b], arms[arm].name
    # Not a trivial agreement: the stays raise and hold alerts.
    assert len(set(np.concatenate(from_psv.actions).tolist())) >= 3


def test_a_fhir_replay_reports_alert_burden_only(
    both_ways: tuple[Path, Path, Path], model: LoadedModel, arms: list[Candidate]
) -> None:
    _, fhir, units = both_ways
    result = replay(fhir, model, arms, workers=1, bootstrap=10, units=units)

    assert not result.data.labelled
    assert set(result.metrics["metric"]) == set(BURDEN_METRICS)
    assert set(result.differences["metric"]) <= set(BURDEN_METRICS)
    assert set(result.metrics["unit"]) == {"all", "MICU", "SICU"}


def test_without_a_mapping_the_unit_is_the_encounters_location(
    both_ways: tuple[Path, Path, Path], model: LoadedModel, arms: list[Candidate]
) -> None:
    _, fhir, _ = both_ways
    result = replay(fhir, model, arms[:1], workers=1, bootstrap=10)

    assert result.data.units == ("Bed 12", "MICU")
    assert result.data.unit_types == ("ward", "icu")
