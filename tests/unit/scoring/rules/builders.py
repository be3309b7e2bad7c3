"""Builders of clinical contexts for scorer tests: observations straight from the canonical dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from clinical.codes import BY_KIND
from clinical.model import ClinicalContext, ExclusionReason, Observation, Provenance
from scoring.port import RiskOutput

AS_OF = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CODED = {"consciousness", "oxygen_therapy", "spo2_scale2_target"}

# Every NEWS2 parameter at a value worth 0 points; tests change one thing at a time.
NEWS2_NORMAL: dict[str, float | str] = {
    "resp_rate": 16,
    "spo2": 97,
    "oxygen_therapy": "air",
    "sbp": 120,
    "heart_rate": 70,
    "consciousness": "A",
    "temperature": 37.0,
}


def observation(
    kind: str,
    value: float | str,
    *,
    hours_ago: float = 1.0,
    resource_id: str | None = None,
    excluded: ExclusionReason | None = None,
) -> Observation:
    coded = kind in CODED
    return Observation(
        kind=kind,
        loinc=None if coded else BY_KIND[kind].loinc,
        value=None if coded or excluded else float(value),
        unit=None if coded else BY_KIND[kind].unit,
        effective_utc=AS_OF - timedelta(hours=hours_ago),
        effective_source="effectiveDateTime",
        status="final",
        provenance=Provenance("Observation", resource_id or f"obs-{kind}", "1", "test-ehr"),
        code_value=str(value) if coded else None,
        excluded=excluded,
    )


def context(values: Mapping[str, float | str], *extra: Observation) -> ClinicalContext:
    """One observation per kind, an hour before AS_OF, plus any extra observations."""
    observations = tuple(observation(kind, value) for kind, value in values.items())
    return ClinicalContext(patient=None, observations=observations + extra)


def news2_context(**changes: float | str | None) -> ClinicalContext:
    """NEWS2_NORMAL with some kinds changed; None leaves that kind out."""
    values = dict(NEWS2_NORMAL)
    for kind, value in changes.items():
        if value is None:
            values.pop(kind, None)
        else:
            values[kind] = value
    return context(values)


def points_for(output: RiskOutput, feature: str) -> float:
    """The points one parameter added to the score, as the explanation says."""
    return next(line.points for line in output.explanation if line.feature == feature)


def detail_for(output: RiskOutput, feature: str) -> str:
    return next(line.detail for line in output.explanation if line.feature == feature)
