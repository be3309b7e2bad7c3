"""The entry points of FHIR normalisation: a CDS Hooks prefetch (or any resources) in, one ClinicalContext out.

Prefetch values may be a resource, a Bundle of any type (nested Bundles of a batch-response included), an
OperationOutcome (recorded as an issue) or None (no data). Nothing in the data makes this raise: only a prefetch
that is not a JSON object raises PrefetchError, which the API answers with 400.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

from clinical.conditions import FlagHit, combine_flags, flag_hit, may_flag, read_condition
from clinical.fhir_fast import Json, codings, obj, objs, provenance, server_base, text, typed_provenance
from clinical.fhir_strict import validation_error
from clinical.medications import read_medication
from clinical.model import (
    ClinicalContext,
    Condition,
    Encounter,
    ExclusionReason,
    MedicationOrder,
    NormalisationIssue,
    Observation,
    Patient,
    Provenance,
)
from clinical.observations import read_observation, read_plain_observation
from clinical.patients import read_encounter, read_patient

Validation = Literal["fast", "strict"]

logger = logging.getLogger(__name__)

# Resource types normalisation reads; strict mode validates exactly these (others are ignored in both modes).
READ_TYPES = frozenset(
    {
        "Patient",
        "Encounter",
        "Observation",
        "Condition",
        "Procedure",
        "MedicationRequest",
        "MedicationAdministration",
        "Medication",
        "Location",
    }
)
# A batch-response holds search Bundles; deeper nesting than this is not a shape any server sends.
_MAX_BUNDLE_DEPTH = 4
# Resource types that _Collector unpacks instead of collecting.
_CONTAINERS = frozenset({"Bundle", "OperationOutcome"})
# Resource types other resources refer to; they are indexed by id (see _indexes).
_REFERENCED_TYPES = frozenset({"Location", "Medication"})
_NO_INDEXES: tuple[Mapping[str, Json], Mapping[str, Json]] = (MappingProxyType({}), MappingProxyType({}))
_ENCOUNTER_PREFERENCE = {"in-progress": 0, "arrived": 1, "triaged": 1, "onleave": 2}


class PrefetchError(ValueError):
    """The prefetch is not a JSON object of resources: the request itself is malformed."""


# A collected resource: (resource, its resourceType, its Provenance). A plain tuple, as one is built for every
# resource of every call.
_Found = tuple[Json, str, Provenance]


def normalise_prefetch(
    prefetch: Mapping[str, object | None],
    *,
    validation: Validation = "fast",
    now: datetime | None = None,
    salt: str,
) -> ClinicalContext:
    """Normalise a CDS Hooks prefetch dict; `salt` keys the pseudonymous patient key, `now` the patient's age."""
    if not isinstance(prefetch, Mapping):
        raise PrefetchError("prefetch must be a JSON object whose values are FHIR resources or null")
    return normalise_resources(
        (value for value in prefetch.values() if value is not None), validation=validation, now=now, salt=salt
    )


def normalise_resources(
    resources: Iterable[object],
    *,
    validation: Validation = "fast",
    now: datetime | None = None,
    salt: str,
) -> ClinicalContext:
    """Normalise resources or Bundles one by one (a list, a generator over NDJSON lines, ...)."""
    collector = _Collector()
    for item in resources:
        collector.collect(item, None, 0)
    found = collector.found
    issues = collector.issues
    if validation == "strict":
        found = _valid(found, issues)
    assembler = _Assembler(salt, now or datetime.now(UTC), issues)
    return assembler.assemble(found, _indexes(found) if collector.references else _NO_INDEXES)


class _Collector:
    """Unpacks Bundles and OperationOutcomes into the resources normalisation reads, each version of one once."""

    def __init__(self) -> None:
        self.found: list[_Found] = []
        self.issues: list[NormalisationIssue] = []
        # Whether a Location or a Medication was found: without one, no Encounter or medication has a reference
        # to resolve and the indexes are not built.
        self.references = False
        # Provenance's fields as a tuple: equal exactly when the Provenances are, and hashed in C.
        self._seen: set[tuple[str, str | None, str | None, str | None]] = set()

    def collect(self, item: object, base: str | None, depth: int) -> None:
        if not isinstance(item, dict):
            self.issues.append(_issue(ExclusionReason.INVALID_RESOURCE, Provenance("unknown"), "not a JSON object"))
            return
        resource_type = text(item, "resourceType")
        if resource_type == "Bundle":
            self._bundle(item, base, depth)
        elif resource_type == "OperationOutcome":
            self.issues.append(_operation_outcome(item, provenance(item, base)))
        elif resource_type is None:
            self.issues.append(_issue(ExclusionReason.INVALID_RESOURCE, provenance(item, base), "no resourceType"))
        elif resource_type in READ_TYPES:
            self._add(item, resource_type, typed_provenance(item, resource_type, base))

    def _add(self, resource: Json, resource_type: str, prov: Provenance) -> None:
        """Keeps a resource of a type normalisation reads, unless the same version of it was found before."""
        if prov.resource_id is not None:
            # Type, id, version and server (two servers may both have an Observation/14) identify a resource.
            key = (resource_type, prov.resource_id, prov.version_id, prov.source_system)
            if key in self._seen:
                return  # the same resource returned by two prefetch queries is one fact, not two
            self._seen.add(key)
        if resource_type in _REFERENCED_TYPES:
            self.references = True
        self.found.append((resource, resource_type, prov))

    def _bundle(self, bundle: Json, base: str | None, depth: int) -> None:
        issues = self.issues
        prov = provenance(bundle, base)
        if depth >= _MAX_BUNDLE_DEPTH:
            issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, "Bundle nested too deeply"))
            return
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, "Bundle.entry is not a list"))
            return
        add = self._add
        last_base: str | None = None
        for entry in entries:
            if not isinstance(entry, dict):
                issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, "Bundle entry is not an object"))
                continue
            entry_base = server_base(entry.get("fullUrl"), last_base)
            if entry_base is None:
                entry_base = base
            else:
                last_base = entry_base
            response = entry.get("response")
            if response is not None and isinstance(response, dict):
                outcome = response.get("outcome")
                if isinstance(outcome, dict):
                    issues.append(_operation_outcome(outcome, provenance(outcome, entry_base)))
            # Entries of batch/transaction requests (and some responses) carry no resource: nothing to read.
            if "resource" in entry:
                resource = entry["resource"]
                resource_type = resource.get("resourceType") if type(resource) is dict else None
                if type(resource_type) is not str or resource_type in _CONTAINERS:
                    self.collect(resource, entry_base, depth + 1)
                elif resource_type in READ_TYPES:  # the common case, without the general collect
                    add(resource, resource_type, typed_provenance(resource, resource_type, entry_base))


def _valid(found: list[_Found], issues: list[NormalisationIssue]) -> list[_Found]:
    """The resources that are valid R4B (strict mode), an issue for each of the others."""
    valid: list[_Found] = []
    for item in found:
        error = validation_error(item[0])
        if error is None:
            valid.append(item)
        else:
            issues.append(_issue(ExclusionReason.INVALID_RESOURCE, item[2], error))
    return valid


class _Assembler:
    """Reads the collected resources into one ClinicalContext."""

    def __init__(self, salt: str, now: datetime, issues: list[NormalisationIssue]) -> None:
        self.salt = salt
        self.now = now
        self.issues = issues
        self.patient: Patient | None = None
        self.encounters: list[Encounter] = []
        self.observations: list[Observation] = []
        self.medications: list[MedicationOrder] = []
        self.conditions: list[Condition] = []
        self.flags: list[FlagHit] = []

    def assemble(self, found: list[_Found], indexes: tuple[Mapping[str, Json], Mapping[str, Json]]) -> ClinicalContext:
        locations, medications = indexes
        observations = self.observations
        issues = self.issues
        for resource, resource_type, prov in found:
            try:
                if resource_type == "Observation":
                    # Nearly every resource is an Observation, and nearly every one is plain (one value that raises
                    # no flag): read here rather than through _read's dispatch, the plain ones in one pass.
                    plain = read_plain_observation(resource, prov)
                    if plain is not None:
                        observations.append(plain)
                        continue
                    observations.extend(read_observation(resource, prov, issues))
                    if may_flag(resource.get("code")):  # the cheap pre-check of flag_hit, without its call
                        hit = flag_hit(resource, prov)
                        if hit is not None:
                            self.flags.append(hit)
                else:
                    self._read(resource, prov, locations, medications)
            except Exception as exc:
                # The readers check every element's type, so this is a bug; still, one resource must not take
                # the whole hook down. Recorded as an issue; the exception type only (its text may quote data).
                logger.warning("unexpected %s while reading a %s", type(exc).__name__, prov.resource_type)
                self.issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, f"unreadable: {type(exc).__name__}"))
        return ClinicalContext(
            patient=self.patient,
            encounter=_current_encounter(self.encounters),
            observations=tuple(self.observations),
            medications=tuple(self.medications),
            conditions=tuple(self.conditions),
            flags=combine_flags(self.flags),
            issues=tuple(self.issues),
        )

    def _read(self, resource: Json, prov: Provenance, locations: Mapping[str, Json], meds: Mapping[str, Json]) -> None:
        resource_type = prov.resource_type
        if resource_type == "Observation":  # assemble reads Observations itself; kept for completeness
            self.observations.extend(read_observation(resource, prov, self.issues))
        elif resource_type == "Patient":
            self._read_patient(resource, prov)
        elif resource_type == "Encounter":
            self.encounters.append(read_encounter(resource, prov, locations))
        elif resource_type in ("MedicationRequest", "MedicationAdministration"):
            order = read_medication(resource, prov, meds, self.issues)
            if order is not None:
                self.medications.append(order)
        elif resource_type == "Condition":
            condition = read_condition(resource, prov, self.issues)
            if condition is not None:
                self.conditions.append(condition)
        if resource_type in ("Observation", "Condition", "Procedure"):
            hit = flag_hit(resource, prov)
            if hit is not None:
                self.flags.append(hit)

    def _read_patient(self, resource: Json, prov: Provenance) -> None:
        patient = read_patient(resource, prov, self.salt, self.now)
        if patient is None:
            self.issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, "Patient has no identifier and no id"))
        elif self.patient is None:
            self.patient = patient
        elif patient.key != self.patient.key:
            self.issues.append(_issue(ExclusionReason.OTHER_PATIENT, prov, "a second patient; not merged"))


def _indexes(found: list[_Found]) -> tuple[dict[str, Json], dict[str, Json]]:
    """Locations and Medications by "Type/id", the form of a relative reference (the first of a reference wins)."""
    locations: dict[str, Json] = {}
    medications: dict[str, Json] = {}
    for resource, resource_type, prov in found:
        if not prov.resource_id:
            continue
        if resource_type == "Location":
            locations.setdefault(f"Location/{prov.resource_id}", resource)
        elif resource_type == "Medication":
            medications.setdefault(f"Medication/{prov.resource_id}", resource)
    return locations, medications


def _current_encounter(encounters: list[Encounter]) -> Encounter | None:
    """The in-progress encounter if there is one, else the one that started last."""
    if not encounters:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)
    return min(
        encounters,
        key=lambda e: (_ENCOUNTER_PREFERENCE.get(e.status or "", 3), -(e.start_utc or epoch).timestamp()),
    )


def _operation_outcome(outcome: Json, prov: Provenance) -> NormalisationIssue:
    # Severity and issue codes only: diagnostics are free text and may quote patient data.
    parts = [
        f"{text(item, 'severity') or '?'}/{text(item, 'code') or '?'}"
        + "".join(f" {code}" for _, code, _ in codings(obj(item, "details")) if code)
        for item in objs(outcome, "issue")
    ]
    detail = "OperationOutcome: " + ("; ".join(parts) if parts else "no issue listed")
    outcome_prov = replace(prov, resource_type="OperationOutcome")
    return NormalisationIssue(ExclusionReason.OPERATION_OUTCOME, outcome_prov, detail)


def _issue(reason: ExclusionReason, prov: Provenance, detail: str) -> NormalisationIssue:
    return NormalisationIssue(reason, prov, detail)
