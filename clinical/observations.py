"""FHIR Observation -> canonical Observations: code mapping, panels, coded answers, units and exclusions.

One resource can give several canonical values (a blood-pressure panel gives one per component; an FiO2 also gives
the derived air/oxygen flag). A value that cannot be read correctly is kept with its ExclusionReason and no value.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import datetime
from typing import Any

from clinical.codes import BY_KIND, BY_LOINC, CONSCIOUSNESS_LOINC, OXYGEN_THERAPY_KIND, Quantity
from clinical.conditions import FLAG_CODE_VALUES
from clinical.fhir_fast import LOINC_SYSTEM, Json, codings, concept_text, number, obj, objs, text
from clinical.fhir_time import parse_fhir_datetime, parse_fhir_datetime_text
from clinical.model import ExclusionReason, NormalisationIssue, Observation, Provenance, new_observation
from clinical.units import UCUM_SYSTEM, resolve_unit, to_canonical

CONSCIOUSNESS_KIND = "consciousness"
_SPO2 = BY_KIND["spo2"]
_SAO2 = BY_KIND["sao2"]
_PULSE_OXIMETRY_LOINC = "59408-5"
_ARTERIAL_OR_PULSE_OX_LOINC = "2708-6"
_STATUS_EXCLUSIONS = {
    "entered-in-error": ExclusionReason.ENTERED_IN_ERROR,
    "cancelled": ExclusionReason.CANCELLED,
}
# Room air is 21 % oxygen: anything above it, or any flow, means supplemental oxygen.
_ROOM_AIR_FIO2_PERCENT = 21.0
_ACVPU_CODES = frozenset("ACVPU")
# Answer texts for ACVPU, matched as whole words on display/text when no single-letter code is sent.
_ACVPU_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(alert|awake)\b", re.IGNORECASE), "A"),
    (re.compile(r"\b(confus\w*|disorient\w*|delirium)\b", re.IGNORECASE), "C"),
    (re.compile(r"\b(voice|verbal)\b", re.IGNORECASE), "V"),
    (re.compile(r"\bpain\w*\b", re.IGNORECASE), "P"),
    (re.compile(r"\b(unresponsive|unconscious)\b", re.IGNORECASE), "U"),
)
_EFFECTIVE_KEYS = ("effectiveDateTime", "effectiveInstant")
_OXYGEN_KINDS = frozenset({"fio2", "oxygen_flow"})
_NO_QUANTITY: Json = {}
# Plain finite floats skip the general number() check; the bounds exclude inf and nan (nan fails both).
_FINITE_LOW, _FINITE_HIGH = -math.inf, math.inf
# The LOINC codes read_plain_observation reads: a code that says by itself which quantity a value is, and asks for
# nothing more: not 2708-6 (the category decides), not a kind that also gives the air/oxygen flag, not a code that
# may raise a care flag. Each with its kind's plausible range, clipped to the finite floats: within it a value is
# finite and plausible in one comparison.
_PLAIN_CODES: dict[str, tuple[Quantity, float, float]] = {
    code: (quantity, max(quantity.plausible[0], -sys.float_info.max), min(quantity.plausible[1], sys.float_info.max))
    for code, quantity in BY_LOINC.items()
    if code != _ARTERIAL_OR_PULSE_OX_LOINC and quantity.kind not in _OXYGEN_KINDS and code not in FLAG_CODE_VALUES
}


def read_plain_observation(resource: Json, prov: Provenance) -> Observation | None:
    """The usable value of an Observation of the commonest shape, else None: then read_observation reads it.

    The shape: a LOINC code of _PLAIN_CODES, alone or the one read_observation maps among several Codings (EHRs
    often send their own code beside LOINC) none of which could raise a care flag; a status that excludes nothing;
    a valid effectiveDateTime; no components and no dataAbsentReason; a plausible JSON number in a UCUM Quantity of
    the canonical unit. For such a resource read_observation gives exactly [this Observation] and no issue, and it
    raises no care flag.
    Nearly every Observation of a hook call has this shape, and reading it in one pass halves its cost.
    """
    if type(resource) is not dict:
        return None  # a mapping of another kind might answer a subscript differently from get()
    # Subscripts, not get(): every element read here must be present, and a missing one ends the shortcut.
    try:
        code = resource["code"]
        if type(code) is not dict:
            return None
        coding = code["coding"]
        if type(coding) is not list or not coding:
            return None
        if len(coding) == 1:
            coded = coding[0]
            if type(coded) is not dict or coded["system"] != LOINC_SYSTEM:
                return None
            loinc = coded["code"]
        else:
            loinc = _mapped_loinc(coding)
        status = resource["status"]
        source = resource["effectiveDateTime"]
        value_quantity = resource["valueQuantity"]
        if type(value_quantity) is not dict:
            return None
        unit = value_quantity["code"]
        raw = value_quantity["value"]
        unit_system = value_quantity["system"]
    except KeyError:
        return None
    plain = _PLAIN_CODES.get(loinc) if type(loinc) is str else None
    if (
        plain is None
        or type(status) is not str
        or status in _STATUS_EXCLUSIONS
        or type(source) is not str
        or "component" in resource
        or "dataAbsentReason" in resource
    ):
        return None
    quantity, low, high = plain
    if unit != quantity.unit or unit_system != UCUM_SYSTEM:
        return None
    # Within the clipped range a number is finite and plausible; booleans are not numbers here.
    if not ((type(raw) is float or type(raw) is int) and low <= raw <= high):
        return None
    effective = parse_fhir_datetime_text(source)
    if effective is None:
        return None
    value = float(raw)
    return new_observation(
        quantity.kind, quantity.loinc, value, quantity.unit, effective, source, status, prov, value, unit
    )


def _mapped_loinc(coding: list[Any]) -> str | None:
    """The LOINC code read_observation maps among several Codings (the first LOINC code it knows), or None when
    reading them needs more than that code: a consciousness code is read as an answer, and a code that could raise
    a care flag (in any system, as may_flag tests) sends the resource to flag_hit."""
    mapped = None
    for item in coding:
        if type(item) is not dict:
            continue
        code = item.get("code")
        if type(code) is not str:
            continue
        if code in FLAG_CODE_VALUES:
            return None
        if item.get("system") != LOINC_SYSTEM:
            continue
        if code == CONSCIOUSNESS_LOINC:
            return None
        if mapped is None and (code == _ARTERIAL_OR_PULSE_OX_LOINC or code in BY_LOINC):
            mapped = code
    return mapped


def read_observation(resource: Json, prov: Provenance, issues: list[NormalisationIssue]) -> list[Observation]:
    """All canonical values in one Observation resource; an issue if nothing in it could be mapped."""
    status = resource.get("status")
    if type(status) is not str:
        status = "unknown"
    excluded_by_status = _STATUS_EXCLUSIONS.get(status)
    source = resource.get("effectiveDateTime")
    if type(source) is str:  # the common case of _effective, without its call
        effective = parse_fhir_datetime(source)
    else:
        effective, source = _effective(resource)
    codes = _loinc(resource.get("code"))
    out: list[Observation] = []
    if CONSCIOUSNESS_LOINC in codes:
        out.append(_consciousness(resource, status, excluded_by_status, effective, source, prov))
    else:
        quantity = _map_codes(codes, resource)
        if quantity is not None:
            out.append(_quantity(resource, quantity, status, excluded_by_status, effective, source, prov))
    components = resource.get("component")
    if type(components) is list:
        for component in components:
            if type(component) is dict:
                quantity = _map_codes(_loinc(component.get("code")), resource)
                if quantity is not None:
                    out.append(_quantity(component, quantity, status, excluded_by_status, effective, source, prov))
    if not out:
        # A panel whose members are separate resources carries no value of its own: nothing is lost.
        if "hasMember" not in resource:
            issues.append(NormalisationIssue(ExclusionReason.UNMAPPED_CODE, prov, "no known code in Observation"))
        return out
    for observation in out:
        if observation.kind in _OXYGEN_KINDS and observation.value is not None:
            out.append(_oxygen_therapy(observation))
            break  # one air/oxygen flag per resource
    return out


def _loinc(concept: object) -> list[str]:
    """LOINC codes of a CodeableConcept. Inlined type checks: this runs for every Observation."""
    if type(concept) is not dict:
        return []
    coding = concept.get("coding")
    if type(coding) is not list:
        return []
    return [
        c["code"] for c in coding if type(c) is dict and c.get("system") == LOINC_SYSTEM and type(c.get("code")) is str
    ]


def _map_codes(codes: list[str], resource: Json) -> Quantity | None:
    for code in codes:
        if code == _ARTERIAL_OR_PULSE_OX_LOINC:
            # 2708-6 is arterial saturation by its name but is widely sent for pulse oximetry; the vital-signs
            # profile pairs it with 59408-5. Pulse oximetry only when the resource says so.
            if _PULSE_OXIMETRY_LOINC in codes or _is_vital_sign(resource):
                return _SPO2
            return _SAO2
        quantity = BY_LOINC.get(code)
        if quantity is not None:
            return quantity
    return None


def _is_vital_sign(resource: Json) -> bool:
    return any(code == "vital-signs" for category in objs(resource, "category") for _, code, _ in codings(category))


def _effective(resource: Json) -> tuple[datetime | None, str | None]:
    """The clinically relevant time: effective[x] (a period's start), else the time the result was issued."""
    for key in _EFFECTIVE_KEYS:
        source = resource.get(key)
        if type(source) is str:
            return parse_fhir_datetime(source), source
    period = obj(resource, "effectivePeriod")
    if period is not None:
        source = period.get("start")
        if isinstance(source, str):
            return parse_fhir_datetime(source), source
    source = resource.get("issued")
    if isinstance(source, str):
        return parse_fhir_datetime(source), source
    return None, None


def _quantity(
    element: Json,
    quantity: Quantity,
    status: str,
    excluded: ExclusionReason | None,
    effective: datetime | None,
    source: str | None,
    prov: Provenance,
) -> Observation:
    """One numeric value from an Observation or one of its components."""
    raw_value: float | str | None = None
    raw_unit: str | None = None
    value: float | None = None
    reason = excluded
    value_quantity = element.get("valueQuantity")
    if type(value_quantity) is dict:
        raw_unit = value_quantity.get("code")
        if type(raw_unit) is not str:
            raw_unit = text(value_quantity, "unit")
        raw = value_quantity.get("value")
        value = raw if type(raw) is float and _FINITE_LOW < raw < _FINITE_HIGH else number(raw)
        raw_value = value if value is not None else (raw if type(raw) is str else None)
        if value is None and reason is None:
            # Infinite or absurd JSON numbers (1e400 parses as inf) are out of range, other types invalid.
            reason = ExclusionReason.OUT_OF_RANGE if type(raw) in (float, int) else ExclusionReason.NO_VALUE
    else:
        value_quantity = _NO_QUANTITY
        if "valueInteger" in element:
            value = number(element["valueInteger"])
            raw_value = value
    if reason is None:
        if "dataAbsentReason" in element:
            reason = ExclusionReason.DATA_ABSENT
        elif value is None:
            reason = ExclusionReason.NO_VALUE
        else:
            canonical = quantity.unit
            # The common case (UCUM already in the canonical unit) costs two comparisons.
            if value_quantity.get("system") == UCUM_SYSTEM and raw_unit == canonical:
                unit: str | None = canonical
            else:
                unit, reason = resolve_unit(value_quantity, canonical)
            if unit is not None:
                converted = value if unit == canonical else to_canonical(value, unit, canonical, quantity.kind)
                if isinstance(converted, ExclusionReason):
                    reason = converted
                else:
                    low, high = quantity.plausible
                    if not low <= converted <= high:
                        reason = ExclusionReason.OUT_OF_RANGE
                    value = converted
            if reason is None and effective is None:
                reason = ExclusionReason.NO_EFFECTIVE_TIME
    if reason is None:
        return new_observation(
            quantity.kind, quantity.loinc, value, quantity.unit, effective, source, status, prov, raw_value, raw_unit
        )
    return new_observation(
        quantity.kind, quantity.loinc, None, None, effective, source, status, prov, raw_value, raw_unit, reason
    )


def _consciousness(
    resource: Json,
    status: str,
    excluded: ExclusionReason | None,
    effective: datetime | None,
    source: str | None,
    prov: Provenance,
) -> Observation:
    """Level of responsiveness on the ACVPU scale, from a single-letter code or the answer's words."""
    concept = obj(resource, "valueCodeableConcept")
    answer = concept_text(concept) or text(resource, "valueString")
    letter = _acvpu(concept, answer)
    reason = excluded
    if reason is None and "dataAbsentReason" in resource:
        reason = ExclusionReason.DATA_ABSENT
    if reason is None and answer is None and letter is None:
        reason = ExclusionReason.NO_VALUE
    if reason is None and letter is None:
        reason = ExclusionReason.UNMAPPED_CODE
    if reason is None and effective is None:
        reason = ExclusionReason.NO_EFFECTIVE_TIME
    return Observation(
        kind=CONSCIOUSNESS_KIND,
        loinc=CONSCIOUSNESS_LOINC,
        value=None,
        unit=None,
        effective_utc=effective,
        effective_source=source,
        status=status,
        provenance=prov,
        source_value=answer,
        excluded=reason,
        code_value=letter if reason is None else None,
    )


def _acvpu(concept: Json | None, answer: str | None) -> str | None:
    for _, code, _ in codings(concept):
        if code is not None and code.strip().upper() in _ACVPU_CODES:
            return code.strip().upper()
    if answer is None:
        return None
    found = {letter for pattern, letter in _ACVPU_WORDS if pattern.search(answer)}
    # Two levels named in one answer ("alert but confused") is ambiguous: better unmapped than misread.
    return found.pop() if len(found) == 1 else None


def _oxygen_therapy(observation: Observation) -> Observation:
    """Air or supplemental oxygen, derived from a usable FiO2 or oxygen-flow value."""
    value = observation.value or 0.0
    on_oxygen = value > _ROOM_AIR_FIO2_PERCENT if observation.kind == "fio2" else value > 0.0
    return Observation(
        kind=OXYGEN_THERAPY_KIND,
        loinc=observation.loinc,
        value=None,
        unit=None,
        effective_utc=observation.effective_utc,
        effective_source=observation.effective_source,
        status=observation.status,
        provenance=observation.provenance,
        source_value=observation.value,
        source_unit=observation.unit,
        code_value="oxygen" if on_oxygen else "air",
    )
