"""What a policy may know besides the risk output: the hook call, the care unit and facts about the patient."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from clinical.model import ClinicalContext


@dataclass(frozen=True, slots=True)
class UnitFacts:
    """The care unit: its type (icu, ward, ed), how full it is and how many patients each nurse has."""

    unit_id: str | None = None
    unit_type: str = "unknown"
    census: int | None = None
    staffing_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """`key` is the pseudonymous patient key; `observed` maps an observation kind to its latest effective time."""

    key: str | None = None
    encounter_id: str | None = None
    age_years: float | None = None
    comfort_care: bool = False
    code_status: str | None = None
    on_antibiotics: bool = False
    observed: Mapping[str, datetime] = field(default_factory=dict)


class _LatestObserved(Mapping[str, datetime]):
    """The latest effective time of each usable observation kind, found for a kind when it is asked for: a decision
    looks up one kind, and only for an alert held for a confirming observation (the clinical context keeps the
    latest observation of each kind asked for, so the scorers have mostly found it already)."""

    __slots__ = ("_all", "_context")

    def __init__(self, context: ClinicalContext) -> None:
        self._context = context
        self._all: dict[str, datetime] | None = None

    def __getitem__(self, kind: str) -> datetime:
        found = self._context.latest(kind)
        if found is None or found.effective_utc is None:
            raise KeyError(kind)
        return found.effective_utc

    def _every_kind(self) -> dict[str, datetime]:
        if self._all is None:
            latest: dict[str, datetime] = {}
            for obs in self._context.observations:
                if obs.usable and obs.effective_utc is not None:
                    seen = latest.get(obs.kind)
                    if seen is None or obs.effective_utc > seen:
                        latest[obs.kind] = obs.effective_utc
            self._all = latest
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._every_kind())

    def __len__(self) -> int:
        return len(self._every_kind())

    def __repr__(self) -> str:
        return repr(self._every_kind())


@dataclass(frozen=True, slots=True)
class PolicyContext:
    hook: str = "unknown"
    role: str = "unknown"
    unit: UnitFacts = field(default_factory=UnitFacts)
    patient: PatientFacts = field(default_factory=PatientFacts)
    # External windows the EHR says are open now (e.g. "procedure"); recurring ones are computed from the clock.
    open_windows: frozenset[str] = frozenset()

    @classmethod
    def from_clinical(
        cls,
        context: ClinicalContext,
        *,
        hook: str = "unknown",
        role: str = "unknown",
        unit: UnitFacts | None = None,
        open_windows: frozenset[str] = frozenset(),
    ) -> PolicyContext:
        """Derive the policy's facts from the canonical clinical context of one hook call."""
        encounter = context.encounter
        if unit is None:
            unit = UnitFacts(
                unit_id=encounter.unit if encounter else None,
                unit_type=encounter.unit_type.value if encounter else "unknown",
            )
        patient = PatientFacts(
            key=context.patient.key if context.patient else None,
            encounter_id=encounter.encounter_id if encounter else None,
            age_years=context.patient.age_years if context.patient else None,
            comfort_care=context.flags.comfort_care,
            code_status=context.flags.code_status,
            # The normaliser keeps only current requests and administrations that happened, so any antibiotic
            # left in the context is therapy under way.
            on_antibiotics=any(m.is_antibiotic for m in context.medications),
            observed=_LatestObserved(context),
        )
        return cls(hook=hook, role=role, unit=unit, patient=patient, open_windows=open_windows)
