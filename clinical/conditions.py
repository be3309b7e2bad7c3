"""Conditions, and the care flags (comfort care, code status) that make deterioration alerts inappropriate.

Flags are raised only by the exact codes listed here, never by free text: a wrongly raised comfort-care flag would
silence alerts for a patient who should get them.

| Code | System | Meaning | Flag |
|---|---|---|---|
| 103735009 | SNOMED CT | Palliative care (regime/therapy) | comfort care |
| 385763009 | SNOMED CT | Hospice care (regime/therapy) | comfort care |
| Z51.5 | ICD-10 / ICD-10-CM | Encounter for palliative care | comfort care |
| 304253006 | SNOMED CT | Not for resuscitation (finding) | code status "dnr" |
| Z66 | ICD-10-CM | Do not resuscitate | code status "dnr" |
| 75320-2 | LOINC | Advance directive (an Observation whose answer states the code status) | as answered |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clinical.fhir_fast import Json, coded_strings, codings, concept_text, obj, text
from clinical.fhir_time import parse_fhir_datetime
from clinical.model import CareFlags, Condition, ExclusionReason, NormalisationIssue, Provenance

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"

COMFORT_CARE_CODES = frozenset({(SNOMED, "103735009"), (SNOMED, "385763009"), (ICD10, "Z51.5"), (ICD10_CM, "Z51.5")})
DNR_CODES = frozenset({(SNOMED, "304253006"), (ICD10_CM, "Z66")})
ADVANCE_DIRECTIVE_LOINC = "75320-2"
# The bare codes (of any system) that may raise a flag: a resource coded with none of them raises none.
FLAG_CODE_VALUES = frozenset({code for _, code in COMFORT_CARE_CODES | DNR_CODES} | {ADVANCE_DIRECTIVE_LOINC})
DNR = "dnr"
FULL_CODE = "full"
# Answers of an advance-directive observation, read as code status only when they say it in so many words.
_DNR_WORDS = re.compile(r"\b(dnr|dnar|do not (attempt )?resuscitat\w*|not for resuscitation)\b", re.IGNORECASE)
_FULL_CODE_WORDS = re.compile(r"\b(full code|for resuscitation|full resuscitation)\b", re.IGNORECASE)
# Conditions that are no longer true, and records that are void, raise no flag.
_VOID_CLINICAL = frozenset({"inactive", "resolved", "remission"})
_VOID_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_VOID_STATUS = frozenset({"entered-in-error", "not-done", "cancelled", "stopped"})


@dataclass(frozen=True, slots=True)
class FlagHit:
    comfort_care: bool
    code_status: str | None
    provenance: Provenance


def read_condition(resource: Json, prov: Provenance, issues: list[NormalisationIssue]) -> Condition | None:
    verification = _status_code(resource, "verificationStatus")
    if verification == "entered-in-error":
        issues.append(NormalisationIssue(ExclusionReason.ENTERED_IN_ERROR, prov, "condition"))
        return None
    concept = obj(resource, "code")
    onset = resource.get("onsetDateTime")
    period = obj(resource, "onsetPeriod")
    if onset is None and period is not None:
        onset = period.get("start")
    return Condition(
        codes=coded_strings(concept),
        display=concept_text(concept),
        clinical_status=_status_code(resource, "clinicalStatus"),
        verification_status=verification,
        onset_utc=parse_fhir_datetime(onset),
        provenance=prov,
    )


def flag_hit(resource: Json, prov: Provenance) -> FlagHit | None:
    """The care flag a Condition, Procedure or Observation raises, if any."""
    if not may_flag(resource.get("code")):
        return None
    if text(resource, "status") in _VOID_STATUS:
        return None
    if _status_code(resource, "clinicalStatus") in _VOID_CLINICAL:
        return None
    if _status_code(resource, "verificationStatus") in _VOID_VERIFICATION:
        return None
    found = {(system, code) for system, code, _ in codings(obj(resource, "code"))}
    comfort = bool(found & COMFORT_CARE_CODES)
    code_status = DNR if found & DNR_CODES else None
    if (LOINC, ADVANCE_DIRECTIVE_LOINC) in found:
        code_status = _answered_code_status(resource) or code_status
    if not comfort and code_status is None:
        return None
    return FlagHit(comfort, code_status, prov)


def combine_flags(hits: list[FlagHit]) -> CareFlags:
    """One CareFlags from every hit. A DNR anywhere wins over a full-code answer: a DNR record that exists must
    not be hidden by another record that says otherwise; a clinician resolves the conflict, not this code."""
    if not hits:
        return CareFlags()
    statuses = {hit.code_status for hit in hits if hit.code_status}
    return CareFlags(
        comfort_care=any(hit.comfort_care for hit in hits),
        code_status=DNR if DNR in statuses else (FULL_CODE if statuses else None),
        provenance=tuple(hit.provenance for hit in hits),
    )


def may_flag(concept: object) -> bool:
    """Whether a code could raise a flag: a cheap pre-check on the bare codes. It runs for every Observation, and
    almost none raise a flag; False means flag_hit would give None."""
    coding = concept.get("coding") if type(concept) is dict else None
    if type(coding) is not list:
        return False
    for item in coding:
        code = item.get("code") if type(item) is dict else None
        if type(code) is str and code in FLAG_CODE_VALUES:
            return True
    return False


def _answered_code_status(resource: Json) -> str | None:
    answer = obj(resource, "valueCodeableConcept")
    if {(system, code) for system, code, _ in codings(answer)} & DNR_CODES:
        return DNR
    words = concept_text(answer) or text(resource, "valueString") or ""
    if _DNR_WORDS.search(words):
        return DNR
    if _FULL_CODE_WORDS.search(words):
        return FULL_CODE
    return None


def _status_code(resource: Json, key: str) -> str | None:
    return next((code for _, code, _ in codings(obj(resource, key)) if code), None)
