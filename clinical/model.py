"""Canonical clinical objects: what scorers and policies reason about, independent of FHIR's shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any


class ExclusionReason(StrEnum):
    """Why a source value was kept out of scoring. Always a value, never a log line."""

    ENTERED_IN_ERROR = "entered-in-error"
    CANCELLED = "cancelled"
    DATA_ABSENT = "data-absent"
    NO_VALUE = "no-value"
    UNCONVERTIBLE_UNIT = "unconvertible-unit"
    UNKNOWN_UNIT = "unknown-unit"
    NON_UCUM_UNIT = "non-ucum-unit"
    OUT_OF_RANGE = "out-of-range"
    NO_EFFECTIVE_TIME = "no-effective-time"
    UNMAPPED_CODE = "unmapped-code"
    INVALID_RESOURCE = "invalid-resource"
    # The FHIR server answered with an OperationOutcome instead of data (a failed or partial prefetch query).
    OPERATION_OUTCOME = "operation-outcome"
    # A second, different Patient in one request: its resource is not merged into the first patient's context.
    OTHER_PATIENT = "other-patient"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class UnitType(StrEnum):
    """The kind of care area a patient is in; policies route on it."""

    ICU = "icu"
    WARD = "ward"
    ED = "ed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a canonical value came from: enough to find the exact source resource version again."""

    resource_type: str
    resource_id: str | None = None
    version_id: str | None = None
    source_system: str | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    """One patient; `key` is the single resolved identifier every other record refers to."""

    key: str
    birth_date: str | None
    sex: Sex
    identifiers: tuple[str, ...]
    provenance: Provenance
    age_years: float | None = None


@dataclass(frozen=True, slots=True)
class Encounter:
    encounter_id: str | None
    class_code: str | None
    status: str | None
    unit: str | None
    unit_type: UnitType
    start_utc: datetime | None
    end_utc: datetime | None
    provenance: Provenance
    # When the patient arrived in the current kind of unit (e.g. ICU admission inside a longer hospital encounter):
    # the start of the unbroken run of location periods of the current unit type. None when the encounter lists no
    # location periods; then the encounter's own start is all that is known.
    unit_start_utc: datetime | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """One measured quantity in its canonical unit, or kept out of scoring with a reason.

    `value` is None whenever `excluded` is set: a value that was not read correctly is never offered to a scorer.
    """

    kind: str
    loinc: str | None
    value: float | None
    unit: str | None
    effective_utc: datetime | None
    effective_source: str | None
    status: str
    provenance: Provenance
    source_value: float | str | None = None
    source_unit: str | None = None
    excluded: ExclusionReason | None = None
    # Coded answers (consciousness on ACVPU, oxygen delivery) carry their code here instead of a number.
    code_value: str | None = None

    @property
    def usable(self) -> bool:
        return self.excluded is None and (self.value is not None or self.code_value is not None)


@dataclass(frozen=True, slots=True)
class MedicationOrder:
    """An active medication request or an administration."""

    kind: str  # "request" | "administration"
    status: str | None
    codes: tuple[str, ...]
    display: str | None
    is_antibiotic: bool
    authored_utc: datetime | None
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class Condition:
    codes: tuple[str, ...]
    display: str | None
    clinical_status: str | None
    verification_status: str | None
    onset_utc: datetime | None
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class CareFlags:
    """Code status and comfort care: what makes deterioration alerts inappropriate."""

    comfort_care: bool = False
    code_status: str | None = None
    provenance: tuple[Provenance, ...] = ()


@dataclass(frozen=True, slots=True)
class NormalisationIssue:
    """A resource or element that could not be used, with the reason; kept so that nothing is lost silently."""

    reason: ExclusionReason
    provenance: Provenance
    detail: str


@dataclass(frozen=True, slots=True)
class ClinicalContext:
    """Everything the scorers and the policy layer may know about one patient at one time."""

    patient: Patient | None
    encounter: Encounter | None = None
    observations: tuple[Observation, ...] = ()
    medications: tuple[MedicationOrder, ...] = ()
    conditions: tuple[Condition, ...] = ()
    flags: CareFlags = field(default_factory=CareFlags)
    issues: tuple[NormalisationIssue, ...] = ()
    # The usable, timed observations by kind, built on first use: every scorer and the policy context ask for a
    # handful of kinds, and scanning all observations for each was a large part of a hook call's scoring time.
    _by_kind: dict[str, tuple[Observation, ...]] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )
    # The latest usable observation by kind, filled as kinds are asked for (several scorers ask for the same kinds).
    _latest: dict[str, Observation | None] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    def usable(self, kind: str) -> tuple[Observation, ...]:
        """The usable observations of a kind that have an effective time, in source order."""
        index = self._by_kind
        if index is None:
            grouped: dict[str, list[Observation]] = {}
            for obs in self.observations:
                if obs.effective_utc is not None and obs.usable:
                    grouped.setdefault(obs.kind, []).append(obs)
            index = {name: tuple(group) for name, group in grouped.items()}
            # A cache of derived data, not state: the context's fields never change.
            object.__setattr__(self, "_by_kind", index)
        return index.get(kind, ())

    def latest(self, kind: str) -> Observation | None:
        """The most recent usable observation of a kind, by effective time (the first of equal times)."""
        cache = self._latest
        if cache is None:
            cache = {}
            object.__setattr__(self, "_latest", cache)
        elif kind in cache:
            return cache[kind]
        best: Observation | None = None
        best_at: datetime | None = None
        for obs in self.usable(kind):
            at = obs.effective_utc
            if best_at is None or (at is not None and at > best_at):
                best, best_at = obs, at
        cache[kind] = best
        return best


def _builder(frozen: type) -> Callable[..., Any]:
    """A function that builds an instance of a frozen slots dataclass, indistinguishable from one built by the
    class's own __init__, at the speed of a plain class.

    A frozen dataclass sets each field through object.__setattr__, which made building the canonical objects most
    of normalisation's cost. The function makes a blank instance of a twin class (the same slots, no dict and no
    __init__: the cheapest object to make), stores each field into it as any class would, and then makes it the
    frozen class, which the identical layout allows.
    """
    slots: tuple[str, ...] = getattr(frozen, "__slots__", ())
    names = tuple(f.name for f in fields(frozen))
    if names != slots or any(f.default_factory is not MISSING for f in fields(frozen)):
        raise TypeError(f"{frozen.__name__}: a builder needs one slot per field and no default factories")
    defaults = {f.name: f.default for f in fields(frozen) if f.default is not MISSING}
    params = ", ".join(f"{name}=_d_{name}" if name in defaults else name for name in names)
    body = "".join(f"    _built.{name} = {name}\n" for name in names)
    namespace: dict[str, Any] = {f"_d_{name}": value for name, value in defaults.items()}
    namespace["_blank"] = type(f"_{frozen.__name__}Blank", (), {"__slots__": slots})
    namespace["_frozen"] = frozen
    # The same technique dataclasses use to write __init__; the source is made of field names only.
    source = f"def build({params}):\n    _built = _blank()\n{body}    _built.__class__ = _frozen\n    return _built\n"
    exec(source, namespace)  # noqa: S102 - source built from field names only
    build: Callable[..., Any] = namespace["build"]
    build.__qualname__ = build.__name__ = f"new_{frozen.__name__.lower()}"
    build.__doc__ = f"{frozen.__name__}(...) for the hot path: the same object, built several times as fast."
    return build


if TYPE_CHECKING:
    # What the builders below are to the type checker: the frozen classes' own signatures.

    def new_provenance(
        resource_type: str,
        resource_id: str | None = None,
        version_id: str | None = None,
        source_system: str | None = None,
    ) -> Provenance:
        """Provenance(...) for the hot path: the same object, built several times as fast."""

    def new_observation(
        kind: str,
        loinc: str | None,
        value: float | None,
        unit: str | None,
        effective_utc: datetime | None,
        effective_source: str | None,
        status: str,
        provenance: Provenance,
        source_value: float | str | None = None,
        source_unit: str | None = None,
        excluded: ExclusionReason | None = None,
        code_value: str | None = None,
    ) -> Observation:
        """Observation(...) for the hot path: the same object, built several times as fast."""

else:
    new_provenance = _builder(Provenance)
    new_observation = _builder(Observation)
