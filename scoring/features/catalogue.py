"""The names, sources, units and windows of every feature the extractor can produce, in matrix column order.

A model card lists the features its model reads; the registry refuses a card naming a feature that is not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinical.codes import BY_KIND
from scoring.features.grid import GRID_KINDS

# Vital signs are charted about hourly, so rolling windows and short trends are meaningful for them; labs are
# sparse, so they get the change since their previous measurement instead.
VITAL_KINDS: tuple[str, ...] = ("heart_rate", "spo2", "temperature", "sbp", "map", "dbp", "resp_rate")
ROLLING_WINDOWS: tuple[int, ...] = (6, 24)
TREND_WINDOW = 6
SOFA_TREND_WINDOW = 24


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One model input: how it is computed, from which kinds, in which unit, over which window (hours)."""

    name: str
    transform: str
    kinds: tuple[str, ...] = ()
    unit: str = "1"
    window_hours: int | None = None

    @property
    def loinc(self) -> tuple[str, ...]:
        return tuple(BY_KIND[k].loinc for k in self.kinds if k in BY_KIND)


def _catalogue() -> tuple[FeatureSpec, ...]:
    specs: list[FeatureSpec] = []
    for kind in GRID_KINDS:
        unit = BY_KIND[kind].unit
        specs += [
            FeatureSpec(kind, "last value carried forward", (kind,), unit),
            FeatureSpec(f"{kind}__hours_since", "hours since last measurement", (kind,), "h"),
            FeatureSpec(f"{kind}__count", "measurements so far in this stay", (kind,), "1"),
            FeatureSpec(f"{kind}__delta", "last value minus the previous measurement", (kind,), unit),
        ]
    for kind in VITAL_KINDS:
        unit = BY_KIND[kind].unit
        for w in ROLLING_WINDOWS:
            specs += [
                FeatureSpec(f"{kind}__min_{w}h", "minimum of measurements in window", (kind,), unit, w),
                FeatureSpec(f"{kind}__max_{w}h", "maximum of measurements in window", (kind,), unit, w),
                FeatureSpec(f"{kind}__mean_{w}h", "mean of measurements in window", (kind,), unit, w),
            ]
        specs.append(
            FeatureSpec(
                f"{kind}__change_{TREND_WINDOW}h",
                "carried value minus carried value w hours earlier",
                (kind,),
                unit,
                TREND_WINDOW,
            )
        )
    specs += [
        FeatureSpec("shock_index", "heart rate / systolic BP", ("heart_rate", "sbp"), "/min/mm[Hg]"),
        FeatureSpec("pulse_pressure", "systolic minus diastolic BP", ("sbp", "dbp"), "mm[Hg]"),
        FeatureSpec("bun_creatinine_ratio", "urea nitrogen / creatinine", ("bun", "creatinine"), "1"),
        FeatureSpec("spo2_fio2_ratio", "SpO2 / FiO2 (fraction)", ("spo2", "fio2"), "%"),
        FeatureSpec("sofa_coagulation", "SOFA points from platelets", ("platelets",), "{score}"),
        FeatureSpec("sofa_liver", "SOFA points from total bilirubin", ("bilirubin_total",), "{score}"),
        FeatureSpec("sofa_renal", "SOFA points from creatinine", ("creatinine",), "{score}"),
        FeatureSpec("sofa_cardiovascular", "SOFA point for MAP < 70 (no vasopressor data)", ("map",), "{score}"),
        FeatureSpec(
            "sofa_partial",
            "sum of the SOFA components above (missing counts 0)",
            ("platelets", "bilirubin_total", "creatinine", "map"),
            "{score}",
        ),
        FeatureSpec(
            f"sofa_partial__change_{SOFA_TREND_WINDOW}h",
            "partial SOFA minus its value w hours earlier (or at the stay's first hour)",
            ("platelets", "bilirubin_total", "creatinine", "map"),
            "{score}",
            SOFA_TREND_WINDOW,
        ),
        FeatureSpec(
            "qsofa_partial",
            "qSOFA points from respiratory rate and systolic BP (no mentation)",
            ("resp_rate", "sbp"),
            "{score}",
        ),
        FeatureSpec(
            "sirs_partial",
            "SIRS criteria met on carried values",
            ("temperature", "heart_rate", "resp_rate", "paco2", "wbc"),
            "{score}",
        ),
        FeatureSpec("kinds_measured_now", "number of kinds measured in this hour", GRID_KINDS, "1"),
        FeatureSpec("age", "age in years", (), "a"),
        FeatureSpec("sex_female", "1 female, 0 male", (), "1"),
        FeatureSpec("hosp_adm_hours", "hospital admission relative to ICU admission", (), "h"),
        FeatureSpec("icu_los_hours", "hours since ICU admission (ICULOS)", (), "h"),
    ]
    return tuple(specs)


FEATURES: tuple[FeatureSpec, ...] = _catalogue()
FEATURE_INDEX: dict[str, int] = {spec.name: i for i, spec in enumerate(FEATURES)}
