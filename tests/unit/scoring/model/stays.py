"""Synthetic PhysioNet-shaped stays for model tests, and the conversion of a stay's rows into live observations."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from clinical.codes import BY_KIND, BY_PHYSIONET_COLUMN
from clinical.model import ClinicalContext, Encounter, Observation, Patient, Provenance, Sex, UnitType
from scoring.features.grid import GRID_KINDS

ICU_ADMISSION = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
PSV_HEADER = (
    "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|EtCO2|BaseExcess|HCO3|FiO2|pH|PaCO2|SaO2|AST|BUN|Alkalinephos|Calcium|"
    "Chloride|Creatinine|Bilirubin_direct|Glucose|Lactate|Magnesium|Phosphate|Potassium|Bilirubin_total|"
    "TroponinI|Hct|Hgb|PTT|WBC|Fibrinogen|Platelets|Age|Gender|Unit1|Unit2|HospAdmTime|ICULOS|SepsisLabel"
)


def synthetic_stay(
    rng: np.random.Generator, *, hours: int, septic: bool, first_hour: int = 1
) -> list[dict[str, float]]:
    """Hourly PhysioNet rows: vitals most hours, labs now and then; septic stays drift towards shock before onset."""
    onset = int(rng.integers(hours // 2, hours)) if septic else hours + 100
    age, female, hosp = float(rng.integers(20, 90)), float(rng.integers(0, 2)), -float(rng.integers(0, 50))
    rows = []
    for i in range(hours):
        drift = max(0.0, 1.0 - (onset - i) / 12.0) if septic else 0.0
        row = {c: math.nan for c in PSV_HEADER.split("|")}
        if rng.random() < 0.9:
            row["HR"] = 80 + 35 * drift + rng.normal(0, 5)
            row["SBP"] = 125 - 30 * drift + rng.normal(0, 8)
            row["MAP"] = 85 - 20 * drift + rng.normal(0, 5)
            row["Resp"] = 16 + 8 * drift + rng.normal(0, 2)
            row["O2Sat"] = 97 - 3 * drift + rng.normal(0, 1)
        if rng.random() < 0.3:
            row["Temp"] = 37 + 1.5 * drift + rng.normal(0, 0.3)
        if rng.random() < 0.1:
            row["WBC"] = 9 + 6 * drift + rng.normal(0, 1)
            row["Lactate"] = 1.2 + 2.5 * drift + abs(rng.normal(0, 0.3))
            row["FiO2"] = 0.4
            row["Creatinine"] = 1.0 + drift
            row["Platelets"] = 220 - 100 * drift
        row.update(Age=age, Gender=female, Unit1=1.0, Unit2=0.0, HospAdmTime=hosp, ICULOS=float(first_hour + i))
        row["SepsisLabel"] = 1.0 if septic and i >= onset - 6 else 0.0
        rows.append(row)
    return rows


def write_psv_stays(folder: Path, *, stays: int, seed: int) -> None:
    """`stays` .psv files (a third of them septic) in the challenge's format."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    header = PSV_HEADER.split("|")
    for s in range(stays):
        rows = synthetic_stay(rng, hours=int(rng.integers(20, 50)), septic=s % 3 == 0)
        lines = [PSV_HEADER] + ["|".join("NaN" if math.isnan(r[c]) else f"{r[c]:.4g}" for c in header) for r in rows]
        (folder / f"p{s:06d}.psv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def table_of_rows(stay_id: str, rows: list[dict[str, float]]) -> pl.DataFrame:
    """The `clinical.physionet.load_table` shape of one stay's raw rows (canonical units)."""
    data: dict[str, list[object]] = {"stay_id": [stay_id] * len(rows), "hour": [int(r["ICULOS"]) for r in rows]}
    for column, quantity in BY_PHYSIONET_COLUMN.items():
        data[quantity.kind] = [r[column] * quantity.physionet_scale for r in rows]
    data["age"] = [r["Age"] for r in rows]
    data["sex"] = ["female" if r["Gender"] == 0 else "male" for r in rows]
    data["hosp_adm_time"] = [r["HospAdmTime"] for r in rows]
    data["sepsis_label"] = [int(r["SepsisLabel"]) for r in rows]
    return pl.DataFrame(data).with_columns(pl.col(k).fill_nan(None) for k in GRID_KINDS)


def context_of_table(table: pl.DataFrame, rng: np.random.Generator) -> ClinicalContext:
    """One stay's table as a live context: each measured cell an Observation at a random minute of its hour."""
    observations = []
    for row in table.iter_rows(named=True):
        for kind in GRID_KINDS:
            value = row[kind]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            when = ICU_ADMISSION + timedelta(hours=row["hour"] - 1, minutes=float(rng.uniform(0, 59.9)))
            observations.append(
                Observation(
                    kind=kind,
                    loinc=BY_KIND[kind].loinc,
                    value=float(value),
                    unit=BY_KIND[kind].unit,
                    effective_utc=when,
                    effective_source="effectiveDateTime",
                    status="final",
                    provenance=Provenance("Observation", f"obs-{len(observations)}"),
                )
            )
    first = table.row(0, named=True)
    age = first["age"]
    patient = Patient(
        key="patient-1",
        birth_date=None,
        sex=Sex(first["sex"]) if first["sex"] in ("female", "male") else Sex.UNKNOWN,
        identifiers=(),
        provenance=Provenance("Patient", "patient-1"),
        age_years=None if age is None or math.isnan(age) else float(age),
    )
    encounter = Encounter(
        encounter_id="enc-1",
        class_code="IMP",
        status="in-progress",
        unit="MICU",
        unit_type=UnitType.ICU,
        start_utc=ICU_ADMISSION,
        end_utc=None,
        provenance=Provenance("Encounter", "enc-1"),
    )
    shuffled = tuple(observations[i] for i in rng.permutation(len(observations)))
    return ClinicalContext(patient=patient, encounter=encounter, observations=shuffled)


def as_of_hour(hour: int) -> datetime:
    """The last instant of an ICU hour (ICULOS `hour`)."""
    return ICU_ADMISSION + timedelta(hours=hour) - timedelta(seconds=1)
