"""Patient and Encounter: one pseudonymous patient key, age and sex; encounter class, care unit and period."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime

from clinical.fhir_fast import Json, codings, concept_text, obj, objs, text
from clinical.fhir_time import parse_fhir_datetime, years_between
from clinical.model import Encounter, Patient, Provenance, Sex, UnitType

_V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
_MEDICAL_RECORD_NUMBER = "MR"
_SEXES = {sex.value: sex for sex in Sex}
# Matches "ICU", "MICU", "PEDICU", "Intensive care", "Critical care" in codes, names and displays.
_ICU_WORDS = re.compile(r"icu\b|intensive|critical care", re.IGNORECASE)
_EMERGENCY_CLASSES = frozenset({"EMER"})
_INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})


def pseudonymise(salt: str, text_to_hash: str) -> str:
    """The pseudonymous key of an identifier: sha256 of salt + text, hex. Every component must hash this way."""
    return hashlib.sha256((salt + text_to_hash).encode("utf-8")).hexdigest()


def identifier_texts(resource: Json) -> tuple[str, ...]:
    """ "system|value" of each Patient identifier, the medical record number(s) first.

    The order decides the patient key: MR-typed identifiers first, then the others in document order.
    """
    medical_record: list[str] = []
    others: list[str] = []
    for identifier in objs(resource, "identifier"):
        value = text(identifier, "value")
        if not value:
            continue
        joined = f"{text(identifier, 'system') or ''}|{value}"
        is_mr = any(
            code == _MEDICAL_RECORD_NUMBER and system in (None, _V2_IDENTIFIER_TYPE)
            for system, code, _ in codings(obj(identifier, "type"))
        )
        (medical_record if is_mr else others).append(joined)
    return (*medical_record, *others)


def read_patient(resource: Json, prov: Provenance, salt: str, now: datetime) -> Patient | None:
    """The patient, keyed by the preferred identifier (else its resource id); None if it has neither."""
    identifiers = identifier_texts(resource)
    resource_id = text(resource, "id")
    if identifiers:
        key_source = identifiers[0]
    elif resource_id:
        key_source = f"Patient/{resource_id}"
    else:
        return None
    birth_date = text(resource, "birthDate")
    born = parse_fhir_datetime(birth_date)
    return Patient(
        key=pseudonymise(salt, key_source),
        birth_date=birth_date if born is not None else None,
        sex=_SEXES.get(text(resource, "gender") or "", Sex.UNKNOWN),
        # Identifiers are carried pseudonymised, never in clear: canonical objects end up in logs and stores.
        identifiers=tuple(pseudonymise(salt, identifier) for identifier in identifiers),
        provenance=prov,
        age_years=years_between(born, now) if born is not None else None,
    )


def read_encounter(resource: Json, prov: Provenance, locations: Mapping[str, Json]) -> Encounter:
    """The encounter with its current location; `locations` resolves Location references by "Location/<id>"."""
    class_codes = _class_codings(resource)
    class_code = next((code for _, code, _ in class_codes if code), None)
    unit_name, location_words = _current_location(resource, locations)
    period = obj(resource, "period")
    class_words = [word for _, code, display in class_codes for word in (code, display) if word]
    unit_type = _unit_type(class_code, [*location_words, *class_words])
    return Encounter(
        encounter_id=text(resource, "id"),
        class_code=class_code,
        status=text(resource, "status"),
        unit=unit_name,
        unit_type=unit_type,
        start_utc=parse_fhir_datetime(period.get("start")) if period is not None else None,
        end_utc=parse_fhir_datetime(period.get("end")) if period is not None else None,
        provenance=prov,
        unit_start_utc=_unit_start(resource, locations, class_code, class_words, unit_type),
    )


def _class_codings(resource: Json) -> tuple[tuple[str | None, str | None, str | None], ...]:
    # R4 `class` is one Coding; R5 made it a list of CodeableConcepts. Both shapes are read.
    single = obj(resource, "class")
    if single is not None:
        return ((text(single, "system"), text(single, "code"), text(single, "display")),)
    return tuple(coding for concept in objs(resource, "class") for coding in codings(concept))


def _current_entry(entries: list[Json]) -> Json:
    # Past stays stay "active" in many systems; the one still open (no period end) is where the patient is.
    active = [entry for entry in entries if text(entry, "status") == "active"]
    still_open = [entry for entry in active if not _has_ended(entry)]
    return (still_open or active or entries)[-1]


def _current_location(resource: Json, locations: Mapping[str, Json]) -> tuple[str | None, list[str]]:
    """Name of the active (else the last listed) location, and every word that describes it."""
    entries = objs(resource, "location")
    if not entries:
        return None, []
    return _entry_location(_current_entry(list(entries)), locations)


def _unit_start(
    resource: Json, locations: Mapping[str, Json], class_code: str | None, class_words: list[str], unit_type: UnitType
) -> datetime | None:
    """Start of the unbroken run of location periods, ending at the current one, whose unit type is the current
    one: a bed move inside the ICU keeps the ICU admission time; planned and reserved entries are skipped."""
    entries = list(objs(resource, "location"))
    if not entries:
        return None
    current = _current_entry(entries)
    index = next(i for i, entry in enumerate(entries) if entry is current)
    start: datetime | None = None
    for entry in reversed(entries[: index + 1]):
        if text(entry, "status") in ("planned", "reserved"):
            continue
        _, words = _entry_location(entry, locations)
        if _unit_type(class_code, [*words, *class_words]) is not unit_type:
            break
        period = obj(entry, "period")
        begun = parse_fhir_datetime(period.get("start")) if period is not None else None
        if begun is None:
            break
        start = begun if start is None else min(start, begun)
    return start


def _entry_location(current: Json, locations: Mapping[str, Json]) -> tuple[str | None, list[str]]:
    reference = obj(current, "location") or {}
    words: list[str] = []
    name = text(reference, "display")
    ref = text(reference, "reference")
    target = locations.get(ref) if ref else None
    if target is not None:
        name = text(target, "name") or name
        for concept in (*objs(target, "type"), obj(target, "physicalType")):
            words.extend(_words(concept))
            words.append(concept_text(concept) or "")
    words.extend(_words(obj(current, "physicalType")))
    if name:
        words.append(name)
    return name, words


def _has_ended(entry: Json) -> bool:
    period = obj(entry, "period")
    return period is not None and isinstance(period.get("end"), str)


def _words(concept: Json | None) -> list[str]:
    return [word for _, code, display in codings(concept) for word in (code, display) if word]


def _unit_type(class_code: str | None, words: list[str]) -> UnitType:
    if any(_ICU_WORDS.search(word) for word in words):
        return UnitType.ICU
    if class_code in _EMERGENCY_CLASSES:
        return UnitType.ED
    if class_code in _INPATIENT_CLASSES:
        return UnitType.WARD
    return UnitType.UNKNOWN
