"""MedicationRequest and MedicationAdministration -> MedicationOrder, with antibiotic recognition.

An antibiotic is recognised by an ATC J01 code (antibacterials for systemic use), by an RxNorm ingredient code of
the table below, or by a common antibiotic name in the medication's text. Names catch the many product codes
(NDC, SNOMED products, RxNorm clinical drugs) that no small table could list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from clinical.fhir_fast import Json, coded_strings, codings, concept_text, obj, objs, text
from clinical.fhir_time import parse_fhir_datetime
from clinical.model import ExclusionReason, MedicationOrder, NormalisationIssue, Provenance

ATC_SYSTEM = "http://www.whocc.no/atc"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# RxNorm ingredient (IN) concepts of common antibacterials.
RXNORM_ANTIBIOTIC_INGREDIENTS: dict[str, str] = {
    "723": "amoxicillin",
    "733": "ampicillin",
    "2180": "cefazolin",
    "2193": "ceftriaxone",
    "2231": "cephalexin",
    "2551": "ciprofloxacin",
    "3640": "doxycycline",
    "6922": "metronidazole",
    "11124": "vancomycin",
    "18631": "azithromycin",
    "29561": "meropenem",
    "82122": "levofloxacin",
}

# Whole-word names (and the stems of two families) of antibacterials common on wards and in ICUs.
_ANTIBIOTIC_NAMES = re.compile(
    r"\b(amikacin|amoxicillin|co-amoxiclav|ampicillin|azithromycin|aztreonam|benzylpenicillin|cef\w+|ceph\w+|"
    r"ciprofloxacin|clarithromycin|clindamycin|colistin|daptomycin|doxycycline|ertapenem|erythromycin|"
    r"flucloxacillin|fosfomycin|gentamicin|imipenem|levofloxacin|linezolid|meropenem|metronidazole|"
    r"minocycline|moxifloxacin|nitrofurantoin|penicillin|piperacillin|sulfamethoxazole|teicoplanin|"
    r"tetracycline|tigecycline|tobramycin|trimethoprim|vancomycin|zosyn)\b",
    re.IGNORECASE,
)

# Requests in these states are current orders; completed, stopped or cancelled ones are history.
_CURRENT_REQUEST_STATUSES = frozenset({"active", "on-hold", "draft"})
# Administrations that did not happen are not medication exposure.
_VOID_ADMINISTRATION_STATUSES = frozenset({"not-done", "entered-in-error"})


def is_antibiotic(codes: tuple[str, ...], names: tuple[str, ...]) -> bool:
    """True for an ATC J01 code, a listed RxNorm ingredient, or a common antibiotic name."""
    for coded in codes:
        system, _, code = coded.partition("|")
        if system == ATC_SYSTEM and code.upper().startswith("J01"):
            return True
        if system == RXNORM_SYSTEM and code in RXNORM_ANTIBIOTIC_INGREDIENTS:
            return True
    return any(_ANTIBIOTIC_NAMES.search(name) for name in names)


def read_medication(
    resource: Json, prov: Provenance, medications: Mapping[str, Json], issues: list[NormalisationIssue]
) -> MedicationOrder | None:
    """A current order or an administration; None (with an issue if it was voided) otherwise."""
    resource_type = text(resource, "resourceType")
    status = text(resource, "status")
    if resource_type == "MedicationRequest":
        kind = "request"
        if status not in _CURRENT_REQUEST_STATUSES:
            if status == "entered-in-error":
                issues.append(NormalisationIssue(ExclusionReason.ENTERED_IN_ERROR, prov, "medication request"))
            return None
        authored = parse_fhir_datetime(resource.get("authoredOn"))
    else:
        kind = "administration"
        if status in _VOID_ADMINISTRATION_STATUSES:
            if status == "entered-in-error":
                issues.append(NormalisationIssue(ExclusionReason.ENTERED_IN_ERROR, prov, "administration"))
            return None
        period = obj(resource, "effectivePeriod")
        start = resource.get("effectiveDateTime") or (period.get("start") if period is not None else None)
        authored = parse_fhir_datetime(start)
    concept, names = _medication_concept(resource, medications)
    codes = coded_strings(concept)
    return MedicationOrder(
        kind=kind,
        status=status,
        codes=codes,
        display=names[0] if names else None,
        is_antibiotic=is_antibiotic(codes, names),
        authored_utc=authored,
        provenance=prov,
    )


def _medication_concept(resource: Json, medications: Mapping[str, Json]) -> tuple[Json | None, tuple[str, ...]]:
    """The medication's CodeableConcept and every name it is known by (concept text, displays, reference)."""
    concept = obj(resource, "medicationCodeableConcept")
    names: list[str] = []
    reference = obj(resource, "medicationReference")
    if concept is None and reference is not None:
        target = _resolve(text(reference, "reference"), resource, medications)
        concept = obj(target, "code") if target is not None else None
        display = text(reference, "display")
        if display:
            names.append(display)
    if concept is not None:
        own = concept_text(concept)
        names[:0] = [own] if own else []
        names.extend(display for _, _, display in codings(concept) if display and display != own)
    return concept, tuple(names)


def _resolve(reference: str | None, resource: Json, medications: Mapping[str, Json]) -> Json | None:
    """A Medication from the resource's contained list ("#id") or from the same prefetch ("Medication/id")."""
    if not reference:
        return None
    if reference.startswith("#"):
        wanted = reference[1:]
        for contained in objs(resource, "contained"):
            if text(contained, "resourceType") == "Medication" and text(contained, "id") == wanted:
                return contained
        return None
    return medications.get(reference)
