"""FHIR replay input: NDJSON resources or a folder of Bundles, normalised per patient as the live path normalises a
prefetch, then put on the hourly grid the model features use (`grid_from_context`) and scored in one batch.

FHIR carries no outcome labels, so a FHIR replay reports alert burden only. Unit context comes from each patient's
Encounter (location, class) unless a mapping file names the unit.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from clinical.fhir_time import parse_fhir_datetime, years_between
from clinical.model import ClinicalContext, UnitType
from clinical.normalise import normalise_resources
from clinical.physionet import UNKNOWN_UNIT
from scoring.features.grid import grid_from_context, stack_grids
from scoring.model.registry import LoadedModel
from shadow.inputs import ReplayInput, grid_input

FHIR_SUFFIXES = (".ndjson", ".jsonl", ".json")
# Keys patients for the normaliser; replay outputs use `shadow.inputs.patient_key` of the patient id instead.
_SALT = "replay"


class FhirReplayError(ValueError):
    """FHIR data that cannot be replayed at all (no patient with an ICU admission and observations)."""


@dataclass(frozen=True, slots=True)
class UnitContext:
    unit: str
    unit_type: str


def is_fhir(path: Path) -> bool:
    """An NDJSON or JSON file, or a folder of them holding no PhysioNet .psv files."""
    if path.is_dir():
        return not any(path.rglob("*.psv")) and any(p.suffix in FHIR_SUFFIXES for p in path.rglob("*"))
    return path.suffix.lower() in FHIR_SUFFIXES


def read_units(path: Path) -> dict[str, UnitContext]:
    """A mapping file: CSV with `patient` (the FHIR Patient id) and `unit`, optionally `unit_type` (default icu)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"patient", "unit"} <= set(rows[0]):
        raise FhirReplayError(f"{path.name}: a units mapping needs the columns patient and unit")
    return {r["patient"]: UnitContext(r["unit"], r.get("unit_type") or UnitType.ICU.value) for r in rows}


def read_resources(path: Path) -> Iterator[dict[str, object]]:
    """Every resource in the file or folder, Bundles opened (nested ones too)."""
    files = sorted(p for p in path.rglob("*") if p.suffix in FHIR_SUFFIXES) if path.is_dir() else [path]
    for file in files:
        with file.open(encoding="utf-8") as handle:
            if file.suffix == ".json":
                yield from _opened(json.load(handle))
            else:
                for line in handle:
                    if line.strip():
                        yield from _opened(json.loads(line))


def _opened(item: object) -> Iterator[dict[str, object]]:
    if not isinstance(item, dict):
        return
    if item.get("resourceType") == "Bundle":
        for entry in item.get("entry") or ():
            if isinstance(entry, dict):
                yield from _opened(entry.get("resource"))
        return
    yield item


def by_patient(resources: Iterable[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    """Resources grouped by the Patient id they are about (a Patient by its own id, others by `subject`)."""
    groups: dict[str, list[dict[str, object]]] = {}
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Patient":
            owner = resource.get("id")
        else:
            subject = resource.get("subject") or resource.get("patient")
            reference = subject.get("reference") if isinstance(subject, dict) else None
            owner = reference.removeprefix("Patient/") if isinstance(reference, str) else None
        if isinstance(owner, str):
            groups.setdefault(owner, []).append(resource)
    return groups


@dataclass(frozen=True, slots=True)
class FhirStay:
    patient_id: str
    context: ClinicalContext
    admitted: datetime
    until: datetime
    hospital_admission: datetime | None
    unit: UnitContext


def fhir_stays(path: Path, units: Mapping[str, UnitContext] | None = None) -> list[FhirStay]:
    """Each patient with an Encounter (or observations to date it by), normalised; patients in id order."""
    stays = []
    for patient_id, resources in sorted(by_patient(read_resources(path)).items()):
        stay = _stay(patient_id, resources, units or {})
        if stay is not None:
            stays.append(stay)
    if not stays:
        raise FhirReplayError("no patient in the FHIR data has observations to replay")
    return stays


def _stay(patient_id: str, resources: list[dict[str, object]], units: Mapping[str, UnitContext]) -> FhirStay | None:
    context = normalise_resources(resources, salt=_SALT)
    times = sorted(o.effective_utc for o in context.observations if o.usable and o.effective_utc is not None)
    encounter = context.encounter
    admitted = (encounter.unit_start_utc or encounter.start_utc) if encounter is not None else None
    admitted = admitted or (times[0] if times else None)
    if admitted is None or not times:
        return None
    ended = encounter.end_utc if encounter is not None else None
    # The last hour replayed: the encounter's end (its last second) or else the last observation.
    until = max(times[-1], ended - timedelta(seconds=1)) if ended is not None else times[-1]
    patient = context.patient
    born = parse_fhir_datetime(patient.birth_date) if patient is not None and patient.birth_date else None
    if patient is not None and born is not None:
        # Age at ICU admission, as PhysioNet records it (the normaliser takes it at the time of normalising).
        context = replace(context, patient=replace(patient, age_years=years_between(born, admitted)))
    unit = units.get(patient_id) or UnitContext(
        (encounter.unit if encounter is not None else None) or UNKNOWN_UNIT,
        encounter.unit_type.value if encounter is not None else UnitType.UNKNOWN.value,
    )
    hospital = encounter.start_utc if encounter is not None else None
    return FhirStay(patient_id, context, admitted, until, hospital, unit)


def fhir_replay_input(
    path: Path,
    model: LoadedModel,
    watched_kinds: tuple[str, ...] = (),
    units: Mapping[str, UnitContext] | None = None,
) -> ReplayInput:
    """Every patient's hours, from ICU admission to the encounter's end, scored in one batch, without labels."""
    stays = fhir_stays(path, units)
    grids = [
        grid_from_context(
            s.context, s.admitted, s.until, hospital_admission_utc=s.hospital_admission, stay_id=s.patient_id
        )[0]
        for s in stays
    ]
    return grid_input(
        stack_grids(grids),
        model,
        watched_kinds,
        tuple(s.unit.unit for s in stays),
        None,
        admissions=tuple(s.admitted for s in stays),
        unit_types=tuple(s.unit.unit_type for s in stays),
    )
