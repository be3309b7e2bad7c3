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
from typing import Literal

from clinical.conditions import FlagHit, combine_flags, flag_hit, may_flag, read_condition
from clinical.fhir_fast import Json, codings, obj, objs, provenance, server_base, text
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
from clinical.observations import read_observation
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
# Resource types that _collect unpacks instead of collecting.
_CONTAINERS = frozenset({"Bundle", "OperationOutcome"})
_ENCOUNTER_PREFERENCE = {"in-progress": 0, "arrived": 1, "triaged": 1, "onleave": 2}


class PrefetchError(ValueError):
    """The prefetch is not a JSON object of resources: the request itself is malformed."""


# A collected resource: (resource, its resourceType, the server base of its Bundle entry). A plain tuple, as one is
# built for every resource of every call.
_Found = tuple[Json, str, str | None]


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
    issues: list[NormalisationIssue] = []
    found: list[_Found] = []
    for item in resources:
        _collect(item, None, 0, found, issues)
    return _Assembler(salt, now or datetime.now(UTC), validation == "strict", issues).assemble(found)


def _collect(item: object, base: str | None, depth: int, found: list[_Found], issues: list[NormalisationIssue]) -> None:
    if not isinstance(item, dict):
        issues.append(_issue(ExclusionReason.INVALID_RESOURCE, Provenance("unknown"), "not a JSON object"))
        return
    resource_type = text(item, "resourceType")
    if resource_type == "Bundle":
        _collect_bundle(item, base, depth, found, issues)
    elif resource_type == "OperationOutcome":
        issues.append(_operation_outcome(item, provenance(item, base)))
    elif resource_type is None:
        issues.append(_issue(ExclusionReason.INVALID_RESOURCE, provenance(item, base), "no resourceType"))
    else:
        found.append((item, resource_type, base))


def _collect_bundle(
    bundle: Json, base: str | None, depth: int, found: list[_Found], issues: list[NormalisationIssue]
) -> None:
    prov = provenance(bundle, base)
    if depth >= _MAX_BUNDLE_DEPTH:
        issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, "Bundle nested too deeply"))
        return
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, "Bundle.entry is not a list"))
        return
    append = found.append
    last_base: str | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, "Bundle entry is not an object"))
            continue
        entry_base = server_base(entry.get("fullUrl"), last_base)
        last_base = entry_base or last_base
        entry_base = entry_base or base
        response = entry.get("response")
        if isinstance(response, dict):
            outcome = response.get("outcome")
            if isinstance(outcome, dict):
                issues.append(_operation_outcome(outcome, provenance(outcome, entry_base)))
        # Entries of batch/transaction requests (and some responses) carry no resource: nothing to read.
        if "resource" in entry:
            resource = entry["resource"]
            resource_type = resource.get("resourceType") if type(resource) is dict else None
            if type(resource_type) is str and resource_type not in _CONTAINERS:
                append((resource, resource_type, entry_base))  # the common case, without the general _collect
            else:
                _collect(resource, entry_base, depth + 1, found, issues)


class _Assembler:
    """Reads the collected resources into one ClinicalContext."""

    def __init__(self, salt: str, now: datetime, strict: bool, issues: list[NormalisationIssue]) -> None:
        self.salt = salt
        self.now = now
        self.strict = strict
        self.issues = issues
        self.patient: Patient | None = None
        self.encounters: list[Encounter] = []
        self.observations: list[Observation] = []
        self.medications: list[MedicationOrder] = []
        self.conditions: list[Condition] = []
        self.flags: list[FlagHit] = []

    def assemble(self, found: list[_Found]) -> ClinicalContext:
        usable = self._usable(found)
        locations, medications = _indexes(usable)
        observations = self.observations
        issues = self.issues
        for item, prov in usable:
            try:
                if item[1] == "Observation":
                    # Nearly every resource is an Observation: read here rather than through _read's dispatch.
                    resource = item[0]
                    observations.extend(read_observation(resource, prov, issues))
                    if may_flag(resource.get("code")):  # the cheap pre-check of flag_hit, without its call
                        hit = flag_hit(resource, prov)
                        if hit is not None:
                            self.flags.append(hit)
                else:
                    self._read(item[0], prov, locations, medications)
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

    def _usable(self, found: list[_Found]) -> list[tuple[_Found, Provenance]]:
        """The resources normalisation reads: known types, each version once, valid R4B in strict mode."""
        # Provenance's fields as a tuple: equal exactly when the Provenances are, and hashed in C.
        seen: set[tuple[str, str | None, str | None, str | None]] = set()
        usable: list[tuple[_Found, Provenance]] = []
        for item in found:
            if item[1] not in READ_TYPES:
                continue
            prov = provenance(item[0], item[2])
            if prov.resource_id is not None:
                # Type, id, version and server (two servers may both have an Observation/14) identify a resource.
                key = (prov.resource_type, prov.resource_id, prov.version_id, prov.source_system)
                if key in seen:
                    continue  # the same resource returned by two prefetch queries is one fact, not two
                seen.add(key)
            if self.strict:
                error = validation_error(item[0])
                if error is not None:
                    self.issues.append(_issue(ExclusionReason.INVALID_RESOURCE, prov, error))
                    continue
            usable.append((item, prov))
        return usable

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


def _indexes(usable: list[tuple[_Found, Provenance]]) -> tuple[dict[str, Json], dict[str, Json]]:
    """Locations and Medications by "Type/id", the form of a relative reference (the first of a reference wins)."""
    locations: dict[str, Json] = {}
    medications: dict[str, Json] = {}
    for item, prov in usable:
        resource_type = item[1]
        if resource_type == "Observation" or not prov.resource_id:
            continue
        if resource_type == "Location":
            locations.setdefault(f"Location/{prov.resource_id}", item[0])
        elif resource_type == "Medication":
            medications.setdefault(f"Medication/{prov.resource_id}", item[0])
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
