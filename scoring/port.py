"""The scorer port: canonical clinical context in, risk outputs out. Scorers never decide what is shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from clinical.model import ClinicalContext, Provenance

# The band of a risk output computed from no inputs at all: its score is None, never a silent zero.
NO_DATA_BAND = "no-data"


@dataclass(frozen=True, slots=True)
class FeatureValue:
    """One input a scorer used, with where it came from (None when it was missing)."""

    name: str
    value: float | str | None
    unit: str | None = None
    observed_utc: datetime | None = None
    provenance: Provenance | None = None


@dataclass(frozen=True, slots=True)
class Contribution:
    """One line of an explanation: which input moved the score, and by how much."""

    feature: str
    points: float
    detail: str


@dataclass(frozen=True, slots=True)
class RiskOutput:
    scorer_id: str
    scorer_version: str
    score: float | None
    band: str
    as_of: datetime
    input_hash: str
    explanation: tuple[Contribution, ...] = ()
    features: Mapping[str, FeatureValue] = field(default_factory=dict)
    # A partial score was computed with inputs missing; `missing` names them. Never a silent zero.
    partial: bool = False
    missing: tuple[str, ...] = ()


@runtime_checkable
class Scorer(Protocol):
    @property
    def scorer_id(self) -> str: ...

    @property
    def version(self) -> str: ...

    def score(self, context: ClinicalContext, as_of: datetime) -> list[RiskOutput]: ...
