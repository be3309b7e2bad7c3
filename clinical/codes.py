"""The quantities the control plane understands: LOINC code, canonical UCUM unit and PhysioNet 2019 column.

Canonical units are the ones scorers and models see. PhysioNet 2019 columns are mapped to the same kinds so that
training, replay and the live hook share one vocabulary. Where the challenge's data dictionary names a unit that its
data plainly do not use, the column's `physionet_note` says so (Lactate and Magnesium: the values are mmol/L and
mg/dL, whatever the dictionary says).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quantity:
    kind: str
    loinc: str
    display: str
    unit: str
    # Codes that also identify this kind (LOINC only). The first code in `loinc` is the one we emit.
    also: tuple[str, ...] = ()
    physionet_column: str | None = None
    # Multiply a PhysioNet value by this to get the canonical unit.
    physionet_scale: float = 1.0
    physionet_note: str = ""
    # Values outside this range (in the canonical unit) are physiologically impossible: kept out of scoring.
    plausible: tuple[float, float] = (float("-inf"), float("inf"))
    # Molar mass in g/mol for mass <-> substance conversions (mg/dL <-> mmol/L).
    molar_mass: float | None = None


QUANTITIES: tuple[Quantity, ...] = (
    # Vital signs
    Quantity("heart_rate", "8867-4", "Heart rate", "/min", physionet_column="HR", plausible=(0, 350)),
    Quantity(
        "spo2",
        "59408-5",
        "Oxygen saturation by pulse oximetry",
        "%",
        also=("2708-6",),
        physionet_column="O2Sat",
        plausible=(0, 100),
    ),
    Quantity(
        "temperature",
        "8310-5",
        "Body temperature",
        "Cel",
        also=("8331-1", "8332-9", "8333-7", "8328-7"),
        physionet_column="Temp",
        plausible=(10, 50),
    ),
    Quantity("sbp", "8480-6", "Systolic blood pressure", "mm[Hg]", physionet_column="SBP", plausible=(0, 400)),
    Quantity("map", "8478-0", "Mean blood pressure", "mm[Hg]", physionet_column="MAP", plausible=(0, 400)),
    Quantity("dbp", "8462-4", "Diastolic blood pressure", "mm[Hg]", physionet_column="DBP", plausible=(0, 400)),
    Quantity("resp_rate", "9279-1", "Respiratory rate", "/min", physionet_column="Resp", plausible=(0, 150)),
    Quantity("etco2", "19889-5", "End-tidal CO2", "mm[Hg]", physionet_column="EtCO2", plausible=(0, 200)),
    # Blood gases and labs
    Quantity(
        "base_excess",
        "1925-7",
        "Base excess in arterial blood",
        "mmol/L",
        physionet_column="BaseExcess",
        plausible=(-60, 60),
    ),
    Quantity(
        "hco3",
        "1960-4",
        "Bicarbonate in arterial blood",
        "mmol/L",
        also=("1963-8",),
        physionet_column="HCO3",
        plausible=(0, 100),
        molar_mass=61.0168,
    ),
    Quantity(
        "fio2",
        "3150-0",
        "Inhaled oxygen concentration",
        "%",
        also=("19996-8",),
        physionet_column="FiO2",
        physionet_scale=100.0,
        physionet_note="PhysioNet gives a fraction (0-1); canonical is percent.",
        plausible=(0, 100),
    ),
    Quantity(
        "ph", "2744-1", "pH of arterial blood", "[pH]", also=("11558-4",), physionet_column="pH", plausible=(6.0, 8.0)
    ),
    Quantity("paco2", "2019-8", "PaCO2", "mm[Hg]", physionet_column="PaCO2", plausible=(0, 250)),
    Quantity("sao2", "2708-6", "Oxygen saturation in arterial blood", "%", physionet_column="SaO2", plausible=(0, 100)),
    Quantity("ast", "1920-8", "AST", "U/L", physionet_column="AST", plausible=(0, 50000)),
    Quantity(
        "bun",
        "3094-0",
        "Urea nitrogen",
        "mg/dL",
        also=("6299-2",),
        physionet_column="BUN",
        plausible=(0, 500),
        molar_mass=28.0134,
    ),
    Quantity(
        "alkaline_phosphatase",
        "6768-6",
        "Alkaline phosphatase",
        "U/L",
        physionet_column="Alkalinephos",
        plausible=(0, 10000),
    ),
    Quantity(
        "calcium",
        "17861-6",
        "Calcium",
        "mg/dL",
        also=("2000-8",),
        physionet_column="Calcium",
        plausible=(0, 40),
        molar_mass=40.078,
    ),
    Quantity(
        "chloride",
        "2075-0",
        "Chloride",
        "mmol/L",
        also=("2069-3",),
        physionet_column="Chloride",
        plausible=(0, 250),
        molar_mass=35.453,
    ),
    Quantity(
        "creatinine",
        "2160-0",
        "Creatinine",
        "mg/dL",
        also=("38483-4", "14682-9"),
        physionet_column="Creatinine",
        plausible=(0, 50),
        molar_mass=113.12,
    ),
    Quantity(
        "bilirubin_direct",
        "1968-7",
        "Direct bilirubin",
        "mg/dL",
        also=("14629-0",),
        physionet_column="Bilirubin_direct",
        plausible=(0, 100),
        molar_mass=584.66,
    ),
    Quantity(
        "glucose",
        "2345-7",
        "Glucose",
        "mg/dL",
        also=("2339-0", "15074-8", "41653-7", "14749-6"),
        physionet_column="Glucose",
        plausible=(0, 3000),
        molar_mass=180.156,
    ),
    Quantity(
        "lactate",
        "2524-7",
        "Lactate",
        "mmol/L",
        also=("32693-4", "2518-9", "14118-4"),
        physionet_column="Lactate",
        physionet_note="Dictionary says mg/dL; the values are mmol/L.",
        plausible=(0, 50),
        molar_mass=90.08,
    ),
    Quantity(
        "magnesium",
        "19123-9",
        "Magnesium",
        "mg/dL",
        also=("2601-3",),
        physionet_column="Magnesium",
        physionet_note="Dictionary says mmol/dL; the values are mg/dL.",
        plausible=(0, 20),
        molar_mass=24.305,
    ),
    Quantity(
        "phosphate",
        "2777-1",
        "Phosphate",
        "mg/dL",
        also=("14879-1",),
        physionet_column="Phosphate",
        plausible=(0, 30),
        molar_mass=30.974,
    ),
    Quantity(
        "potassium",
        "2823-3",
        "Potassium",
        "mmol/L",
        also=("6298-4",),
        physionet_column="Potassium",
        plausible=(0, 15),
        molar_mass=39.098,
    ),
    Quantity(
        "bilirubin_total",
        "1975-2",
        "Total bilirubin",
        "mg/dL",
        also=("14631-6",),
        physionet_column="Bilirubin_total",
        plausible=(0, 100),
        molar_mass=584.66,
    ),
    Quantity(
        "troponin_i",
        "10839-9",
        "Troponin I",
        "ng/mL",
        also=("42757-5",),
        physionet_column="TroponinI",
        plausible=(0, 1000),
    ),
    Quantity("hct", "4544-3", "Hematocrit", "%", also=("20570-8",), physionet_column="Hct", plausible=(0, 100)),
    Quantity("hgb", "718-7", "Hemoglobin", "g/dL", also=("20509-6",), physionet_column="Hgb", plausible=(0, 30)),
    Quantity("ptt", "3173-2", "aPTT", "s", also=("14979-9",), physionet_column="PTT", plausible=(0, 300)),
    Quantity("wbc", "6690-2", "Leukocytes", "10*3/uL", also=("26464-8",), physionet_column="WBC", plausible=(0, 1000)),
    Quantity("fibrinogen", "3255-7", "Fibrinogen", "mg/dL", physionet_column="Fibrinogen", plausible=(0, 2000)),
    Quantity(
        "platelets",
        "777-3",
        "Platelets",
        "10*3/uL",
        also=("26515-7",),
        physionet_column="Platelets",
        plausible=(0, 5000),
    ),
    # Other inputs of the rule scores
    Quantity("gcs_total", "9269-2", "Glasgow coma score total", "{score}", plausible=(3, 15)),
    Quantity("oxygen_flow", "3151-8", "Inhaled oxygen flow rate", "L/min", plausible=(0, 100)),
    Quantity("body_weight", "29463-7", "Body weight", "kg", also=("3141-9",), plausible=(0.2, 700)),
    Quantity("body_height", "8302-2", "Body height", "cm", also=("8306-3", "8308-9"), plausible=(20, 280)),
)

# Coded (non-numeric) kinds: their value is a code in `Observation.code_value`.
CONSCIOUSNESS_LOINC = "67775-7"  # Level of responsiveness (ACVPU answers: A, C, V, P, U)
OXYGEN_THERAPY_KIND = "oxygen_therapy"  # "air" or "oxygen", derived from FiO2, flow or a device observation
SPO2_SCALE2_KIND = "spo2_scale2_target"  # a prescribed SpO2 target of 88-92 % puts NEWS2 on scale 2

BY_KIND: dict[str, Quantity] = {q.kind: q for q in QUANTITIES}
BY_LOINC: dict[str, Quantity] = {}
for _q in QUANTITIES:
    BY_LOINC.setdefault(_q.loinc, _q)
for _q in QUANTITIES:
    for _code in _q.also:
        BY_LOINC.setdefault(_code, _q)
BY_PHYSIONET_COLUMN: dict[str, Quantity] = {q.physionet_column: q for q in QUANTITIES if q.physionet_column}
