"""normalise_prefetch: prefetch shapes, patient key, encounter unit, medications, care flags and strict mode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from clinical.model import ExclusionReason, Sex, UnitType
from clinical.normalise import PrefetchError, normalise_prefetch, normalise_resources
from clinical.patients import pseudonymise

NOW = datetime(2024, 12, 25, 12, 0, tzinfo=UTC)
SALT = "test-salt"
MR_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}


def patient(**extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "female",
        "birthDate": "1974-12-25",
        "identifier": [
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "444222222"},
            {"type": MR_TYPE, "system": "urn:oid:1.2.3", "value": "MRN-7"},
        ],
    }
    resource.update(extra)
    return resource


def heart_rate(resource_id: str = "hr1", value: float = 88) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": "2024-12-25T10:00:00Z",
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def searchset(*resources: dict[str, Any], base: str = "https://ehr.example.org/fhir") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r.get('id')}", "resource": r} for r in resources],
    }


def normalise(prefetch: dict[str, Any], validation: str = "fast") -> Any:
    return normalise_prefetch(prefetch, validation=validation, now=NOW, salt=SALT)  # type: ignore[arg-type]


def test_the_patient_key_hashes_the_medical_record_number_first() -> None:
    context = normalise({"patient": patient()})
    assert context.patient is not None
    assert context.patient.key == pseudonymise(SALT, "urn:oid:1.2.3|MRN-7")
    assert "MRN-7" not in repr(context)


def test_without_identifiers_the_patient_key_hashes_the_resource_id() -> None:
    context = normalise({"patient": patient(identifier=[])})
    assert context.patient is not None and context.patient.key == pseudonymise(SALT, "Patient/p1")


def test_the_patient_has_age_at_now_and_sex() -> None:
    context = normalise({"patient": patient()})
    assert context.patient is not None
    assert context.patient.age_years == pytest.approx(50.0, abs=0.01)
    assert context.patient.sex is Sex.FEMALE


def test_a_null_prefetch_value_means_no_data() -> None:
    context = normalise({"patient": None, "vitals": None})
    assert context.patient is None and context.issues == ()


def test_a_prefetch_that_is_not_an_object_raises_prefetch_error() -> None:
    with pytest.raises(PrefetchError):
        normalise_prefetch([heart_rate()], salt=SALT)  # type: ignore[arg-type]


def test_an_operation_outcome_is_recorded_as_an_issue() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "patient Smith timed out"}],
    }
    context = normalise({"patient": patient(), "vitals": outcome})
    [issue] = context.issues
    assert issue.reason is ExclusionReason.OPERATION_OUTCOME
    assert "error/timeout" in issue.detail and "Smith" not in issue.detail


def test_bundle_entries_carry_the_server_base_as_source_system() -> None:
    context = normalise({"vitals": searchset(heart_rate())})
    [obs] = context.observations
    assert obs.provenance.source_system == "https://ehr.example.org/fhir"
    assert obs.provenance.resource_id == "hr1"


def test_each_bundle_entry_gets_the_server_base_of_its_own_full_url() -> None:
    full_urls = [
        "https://a.org/fhir/Observation/1",
        "https://a.org/fhir/Observation/2",
        "https://b.org/fhir/Observation/3",  # another server between two entries of the first
        "https://a.org/fhir/Observation/4/_history/2",
        "https://a.org/fhir/r4/Observation/5",  # the first base, one level deeper
        "https://a.org/fhir/Observation/6/",
        "urn:uuid:0d5f2ab4-9c5e-4d0b-8f0e-2b1c3d4e5f60",  # names no server: the enclosing base is kept (none here)
        "https://a.org/fhir/Observation/8",
    ]
    entries = [{"fullUrl": url, "resource": heart_rate(f"hr{i}")} for i, url in enumerate(full_urls)]
    context = normalise({"vitals": {"resourceType": "Bundle", "type": "searchset", "entry": entries}})
    assert [obs.provenance.source_system for obs in context.observations] == [
        "https://a.org/fhir",
        "https://a.org/fhir",
        "https://b.org/fhir",
        "https://a.org/fhir",
        "https://a.org/fhir/r4",
        "https://a.org/fhir",
        None,
        "https://a.org/fhir",
    ]


def test_one_id_is_one_resource_per_server_and_version() -> None:
    first, again, newer = heart_rate(value=80), heart_rate(value=81), heart_rate(value=82)
    first["meta"] = {"versionId": "1"}
    again["meta"] = {"versionId": "1"}
    newer["meta"] = {"versionId": "2"}
    context = normalise(
        {
            "a": searchset(first),
            "b": searchset(again),  # the same version from the same server: the first copy is kept
            "c": searchset(newer),
            "d": searchset(again, base="https://other.org/fhir"),
        }
    )
    assert [(obs.value, obs.provenance.version_id, obs.provenance.source_system) for obs in context.observations] == [
        (80.0, "1", "https://ehr.example.org/fhir"),
        (82.0, "2", "https://ehr.example.org/fhir"),
        (81.0, "1", "https://other.org/fhir"),
    ]


def test_meta_source_wins_over_the_bundle_base() -> None:
    resource = heart_rate()
    resource["meta"] = {"source": "urn:device:monitor-7", "versionId": "4"}
    context = normalise({"vitals": searchset(resource)})
    assert context.observations[0].provenance.source_system == "urn:device:monitor-7"
    assert context.observations[0].provenance.version_id == "4"


def test_one_resource_returned_by_two_queries_counts_once() -> None:
    context = normalise({"vitals": searchset(heart_rate()), "recent": searchset(heart_rate())})
    assert len(context.observations) == 1


def test_same_id_on_two_servers_is_two_resources() -> None:
    context = normalise({"a": searchset(heart_rate()), "b": searchset(heart_rate(), base="https://other.org/fhir")})
    assert len(context.observations) == 2


def test_a_batch_response_of_search_bundles_is_read_through() -> None:
    inner = searchset(heart_rate())
    batch = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"resource": inner, "response": {"status": "200 OK"}}],
    }
    assert len(normalise({"all": batch}).observations) == 1


def test_a_second_patient_is_reported_and_not_merged() -> None:
    other = patient(id="p2", identifier=[{"type": MR_TYPE, "system": "urn:oid:1.2.3", "value": "MRN-8"}])
    context = normalise({"patient": patient(), "other": other})
    assert context.patient is not None and context.patient.key == pseudonymise(SALT, "urn:oid:1.2.3|MRN-7")
    assert [i.reason for i in context.issues] == [ExclusionReason.OTHER_PATIENT]


@pytest.mark.parametrize(
    ("encounter_class", "location", "unit_type"),
    [
        ("IMP", "Medical Intensive Care Unit", UnitType.ICU),
        ("IMP", "MICU bed 4", UnitType.ICU),
        ("EMER", "Resus 2", UnitType.ED),
        ("IMP", "Ward 1, Room 42", UnitType.WARD),
        ("AMB", "Clinic 3", UnitType.UNKNOWN),
    ],
)
def test_the_care_unit_type_is_guessed_from_class_and_location(
    encounter_class: str, location: str, unit_type: UnitType
) -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": encounter_class},
        "period": {"start": "2024-12-24T22:00:00-05:00"},
        "location": [{"location": {"display": location}, "status": "active"}],
    }
    context = normalise({"encounter": encounter})
    assert context.encounter is not None
    assert (context.encounter.unit, context.encounter.unit_type) == (location, unit_type)
    assert context.encounter.start_utc == datetime(2024, 12, 25, 3, 0, tzinfo=UTC)


def test_a_referenced_location_type_of_icu_makes_the_unit_icu() -> None:
    location = {
        "resourceType": "Location",
        "id": "l1",
        "name": "4 West",
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "ICU"}]}],
    }
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "in-progress",
        "class": {"code": "IMP"},
        "location": [{"location": {"reference": "Location/l1"}}],
    }
    context = normalise({"e": encounter, "l": location})
    assert context.encounter is not None
    assert (context.encounter.unit, context.encounter.unit_type) == ("4 West", UnitType.ICU)


def medication_request(status: str, concept: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": f"m-{status}",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": concept,
        "authoredOn": "2024-12-25T08:00:00Z",
        "subject": {"reference": "Patient/p1"},
    }


@pytest.mark.parametrize(
    ("concept", "antibiotic"),
    [
        ({"coding": [{"system": "http://www.whocc.no/atc", "code": "J01DD04"}]}, True),
        ({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "11124"}]}, True),
        ({"text": "Piperacillin/Tazobactam 4.5 g IV"}, True),
        ({"text": "Nystatin oral suspension"}, False),
        ({"coding": [{"system": "http://www.whocc.no/atc", "code": "J02AC01"}]}, False),
    ],
)
def test_antibiotics_are_recognised_by_atc_rxnorm_or_name(concept: dict[str, Any], antibiotic: bool) -> None:
    [order] = normalise({"meds": medication_request("active", concept)}).medications
    assert order.is_antibiotic is antibiotic
    assert order.authored_utc == datetime(2024, 12, 25, 8, 0, tzinfo=UTC)


def test_only_current_medication_requests_are_kept() -> None:
    concept = {"text": "vancomycin"}
    kept = [
        normalise({"m": medication_request(status, concept)}).medications
        for status in ("active", "on-hold", "draft", "completed", "stopped", "cancelled")
    ]
    assert [len(orders) for orders in kept] == [1, 1, 1, 0, 0, 0]


def test_a_contained_medication_is_resolved_for_its_name() -> None:
    request = medication_request("active", {})
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "#med1"}
    request["contained"] = [{"resourceType": "Medication", "id": "med1", "code": {"text": "Ceftriaxone 1 g"}}]
    [order] = normalise({"m": request}).medications
    assert (order.display, order.is_antibiotic) == ("Ceftriaxone 1 g", True)


def test_palliative_care_condition_sets_comfort_care() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "103735009"}]},
    }
    context = normalise({"c": condition})
    assert context.flags.comfort_care is True
    assert context.flags.provenance[0].resource_id == "c1"
    assert len(context.conditions) == 1


def test_a_refuted_palliative_care_condition_sets_no_flag() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "verificationStatus": {"coding": [{"code": "refuted"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "103735009"}]},
    }
    assert normalise({"c": condition}).flags.comfort_care is False


def test_an_advance_directive_observation_gives_the_code_status() -> None:
    observation = {
        "resourceType": "Observation",
        "id": "ad",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "75320-2"}]},
        "valueCodeableConcept": {"text": "Do not resuscitate"},
    }
    assert normalise({"ad": observation}).flags.code_status == "dnr"


def test_strict_mode_reports_an_invalid_resource_and_keeps_the_rest() -> None:
    broken = heart_rate("bad")
    broken["status"] = 42
    context = normalise({"v": searchset(heart_rate(), broken)}, validation="strict")
    assert [o.provenance.resource_id for o in context.observations] == ["hr1"]
    [issue] = context.issues
    assert issue.reason is ExclusionReason.INVALID_RESOURCE and issue.provenance.resource_id == "bad"
    assert "42" not in issue.detail


def test_fast_mode_reads_garbage_without_raising() -> None:
    garbage: list[object] = [
        42,
        "text",
        [],
        {"resourceType": 7},
        {"resourceType": "Bundle", "entry": "nope"},
        {"resourceType": "Bundle", "entry": [1, {"resource": [1]}, {"fullUrl": 5, "resource": {"x": 1}}]},
        {"resourceType": "Observation", "code": "8867-4", "component": [None, {"code": []}], "meta": []},
        {"resourceType": "Patient", "identifier": {"value": 1}, "birthDate": 1974, "gender": ["f"]},
        {"resourceType": "Encounter", "class": [1, {"coding": 2}], "location": [{"location": 5}], "period": []},
        {"resourceType": "MedicationRequest", "status": "active", "medicationReference": {"reference": 3}},
        {"resourceType": "Condition", "code": {"coding": [{"code": {"x": 1}}]}, "onsetDateTime": 5},
    ]
    context = normalise_resources(garbage, salt=SALT, now=NOW)
    assert not any(issue.detail.startswith("unreadable") for issue in context.issues)
    assert ExclusionReason.INVALID_RESOURCE in {issue.reason for issue in context.issues}
