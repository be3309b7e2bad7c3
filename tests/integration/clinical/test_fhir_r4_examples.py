"""Every official FHIR R4 example through normalisation in both modes, and the awkward ones value by value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clinical.model import ClinicalContext, ExclusionReason, Observation, UnitType
from clinical.normalise import normalise_prefetch, normalise_resources
from clinical.patients import pseudonymise
from tests.conftest import SHARED_DIR

NOW = datetime(2024, 1, 1, tzinfo=UTC)
# Parametrisation needs the file names at collection time, before fixtures exist.
EXAMPLES = SHARED_DIR / "data" / "fhir-r4-examples"
EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.json") if p.name != "package.json")


@pytest.fixture(scope="module")
def examples(shared_data: Path) -> Path:
    return shared_data / "fhir-r4-examples"


def load(examples: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((examples / name).read_text())
    return data


def normalise(examples: Path, name: str) -> ClinicalContext:
    return normalise_prefetch({"data": load(examples, name)}, now=NOW, salt="s")


def only(context: ClinicalContext, kind: str) -> Observation:
    [obs] = [o for o in context.observations if o.kind == kind]
    return obs


def test_the_example_set_is_the_one_described() -> None:
    assert len(EXAMPLE_FILES) > 300


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_every_example_normalises_identically_in_fast_and_strict_mode(examples: Path, name: str) -> None:
    resource = load(examples, name)
    fast = normalise_resources([resource], now=NOW, salt="s")
    strict = normalise_resources([resource], now=NOW, salt="s", validation="strict")
    assert fast == strict


def test_weight_in_pounds_is_stored_in_kilograms(examples: Path) -> None:
    obs = only(normalise(examples, "Observation-example.json"), "body_weight")
    assert obs.value == pytest.approx(185 * 0.45359237, rel=1e-12)  # 83.91458845 kg
    assert (obs.source_value, obs.source_unit, obs.unit) == (185.0, "[lb_av]", "kg")
    assert obs.effective_utc == datetime(2016, 3, 28, tzinfo=UTC) and obs.effective_source == "2016-03-28"


def test_height_in_inches_is_stored_in_centimetres(examples: Path) -> None:
    obs = only(normalise(examples, "Observation-body-height.json"), "body_height")
    assert obs.value == pytest.approx(66.89999999999999 * 2.54, rel=1e-12)  # 169.926 cm


def test_snomed_coded_mmol_per_l_bicarbonate_is_accepted(examples: Path) -> None:
    obs = only(normalise(examples, "Observation-f203.json"), "hco3")
    assert (obs.value, obs.unit) == (28.0, "mmol/L")
    assert obs.effective_utc == datetime(2013, 4, 4, 13, 34, tzinfo=UTC)  # from `issued`, +01:00


def test_a_creatinine_under_a_local_code_only_is_reported_unmapped(examples: Path) -> None:
    context = normalise(examples, "Observation-f204.json")
    assert context.observations == ()
    assert [i.reason for i in context.issues] == [ExclusionReason.UNMAPPED_CODE]


def test_the_entered_in_error_temperature_is_kept_out(examples: Path) -> None:
    obs = only(normalise(examples, "Observation-f202.json"), "temperature")
    assert (obs.value, obs.excluded, obs.source_value, obs.status) == (
        None,
        ExclusionReason.ENTERED_IN_ERROR,
        39.0,
        "entered-in-error",
    )


def test_a_blood_pressure_with_absent_diastolic_keeps_the_systolic(examples: Path) -> None:
    context = normalise(examples, "Observation-blood-pressure-dar.json")
    assert only(context, "sbp").value == 107.0
    assert only(context, "dbp").excluded is ExclusionReason.DATA_ABSENT


def test_a_complete_blood_pressure_panel_gives_both_values(examples: Path) -> None:
    context = normalise(examples, "Observation-blood-pressure.json")
    assert (only(context, "sbp").value, only(context, "dbp").value) == (107.0, 60.0)


def test_cancelled_observations_give_no_values(examples: Path) -> None:
    bp = normalise(examples, "Observation-blood-pressure-cancel.json")
    assert {o.excluded for o in bp.observations} == {ExclusionReason.CANCELLED}
    glucose = only(normalise(examples, "Observation-unsat.json"), "glucose")
    assert (glucose.value, glucose.excluded) == (None, ExclusionReason.CANCELLED)


def test_decimals_of_1e245_are_read_without_error_and_never_offered_as_values(examples: Path) -> None:
    resource = load(examples, "Observation-decimal.json")
    assert {c["valueQuantity"]["value"] for c in resource["component"]} >= {1e-245, -1e245}
    assert normalise(examples, "Observation-decimal.json").observations == ()
    # The same decimals on a mapped code are out of range.
    for value in (1e245, -1e245):
        resource["code"] = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
        resource["effectiveDateTime"] = "2020-01-01"
        resource["valueQuantity"] = {"value": value, "system": "http://unitsofmeasure.org", "code": "/min"}
        obs = only(normalise_resources([resource], now=NOW, salt="s"), "heart_rate")
        assert (obs.value, obs.excluded) == (None, ExclusionReason.OUT_OF_RANGE)


def test_an_iso_11073_coded_observation_and_unit_is_not_guessed(examples: Path) -> None:
    context = normalise(examples, "Observation-656.json")
    assert context.observations == ()
    assert [i.reason for i in context.issues] == [ExclusionReason.UNMAPPED_CODE]


def test_panels_through_has_member_raise_no_issue(examples: Path) -> None:
    for name in ("Observation-vitals-panel.json", "Observation-bgpanel.json"):
        context = normalise(examples, name)
        assert context.observations == () and context.issues == ()


def test_spo2_example_with_both_codes_is_pulse_oximetry(examples: Path) -> None:
    obs = only(normalise(examples, "Observation-satO2.json"), "spo2")
    assert obs.value == 95.0


def test_glucose_in_mmol_per_l_is_converted_to_mg_per_dl(examples: Path) -> None:
    obs = only(normalise(examples, "Observation-f001.json"), "glucose")
    assert obs.value == pytest.approx(6.3 * 18.0156, rel=1e-9)


@pytest.mark.parametrize(
    ("name", "bundle_type"),
    [
        ("Bundle-bundle-example.json", "searchset"),
        ("Bundle-101.json", "collection"),
        ("Bundle-hla-1.json", "transaction"),
        ("Bundle-bundle-request-simplesummary.json", "batch"),
        ("Bundle-bundle-response-simplesummary.json", "batch-response"),
        ("Bundle-bundle-response.json", "transaction-response"),
        ("Bundle-father.json", "document"),
        ("Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json", "message"),
    ],
)
def test_a_bundle_of_each_type_is_read(examples: Path, name: str, bundle_type: str) -> None:
    assert load(examples, name)["type"] == bundle_type
    context = normalise(examples, name)
    assert not any(issue.detail.startswith("unreadable") for issue in context.issues)


def test_the_searchset_request_of_unknown_status_is_not_a_current_order(examples: Path) -> None:
    context = normalise(examples, "Bundle-bundle-example.json")
    assert context.medications == () and context.issues == ()


def test_the_batch_response_gives_the_patient_inside_it(examples: Path) -> None:
    context = normalise(examples, "Bundle-bundle-response-simplesummary.json")
    assert context.patient is not None


def test_the_collection_bundle_labs_without_times_are_kept_out(examples: Path) -> None:
    context = normalise(examples, "Bundle-101.json")
    assert context.observations and all(o.excluded is ExclusionReason.NO_EFFECTIVE_TIME for o in context.observations)


def test_the_search_warning_outcome_is_an_issue(examples: Path) -> None:
    context = normalise(examples, "Bundle-bundle-search-warning.json")
    assert [i.reason for i in context.issues] == [ExclusionReason.OPERATION_OUTCOME]


def test_the_emergency_encounter_is_now_on_the_ward(examples: Path) -> None:
    encounter = normalise(examples, "Encounter-emerg.json").encounter
    assert encounter is not None
    assert (encounter.unit, encounter.unit_type) == ("Ward 1, Room 42, Bed 1", UnitType.WARD)
    assert encounter.class_code == "IMP"
    assert encounter.start_utc == datetime(2017, 1, 31, 21, 15, tzinfo=UTC)


def test_vancomycin_administration_is_an_antibiotic(examples: Path) -> None:
    [order] = normalise(examples, "MedicationAdministration-medadmin0301.json").medications
    assert (order.kind, order.is_antibiotic) == ("administration", True)


def test_entered_in_error_administration_is_reported_not_used(examples: Path) -> None:
    context = normalise(examples, "MedicationAdministration-medadmin0303.json")
    assert context.medications == ()
    assert [i.reason for i in context.issues] == [ExclusionReason.ENTERED_IN_ERROR]


def test_the_example_patient_key_uses_the_medical_record_number(examples: Path) -> None:
    context = normalise(examples, "Patient-example.json")
    assert context.patient is not None
    assert context.patient.key == pseudonymise("s", "urn:oid:1.2.36.146.595.217.0.1|12345")
    assert context.patient.age_years == pytest.approx(49.02, abs=0.01)
