"""Observations: code mapping, panels, coded answers, oxygen therapy and every exclusion reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.codes import CONSCIOUSNESS_LOINC
from clinical.conditions import FLAG_CODE_VALUES, may_flag
from clinical.model import ExclusionReason, NormalisationIssue, Observation, Provenance
from clinical.observations import read_observation, read_plain_observation
from tests.strategies import mangled_observations, multi_coded_observations, near_plain_observations, observations

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PROV = Provenance("Observation", "o1", "3", "https://ehr.example.org/fhir")
VITAL = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]


def observation(code: str, value: Any = None, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": "2024-05-01T10:00:00+02:00",
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "system": UCUM, "code": unit, "unit": unit}
    resource.update(extra)
    return resource


def read(resource: dict[str, Any]) -> tuple[list[Observation], list[NormalisationIssue]]:
    issues: list[NormalisationIssue] = []
    return read_observation(resource, PROV, issues), issues


def test_a_heart_rate_keeps_value_time_and_provenance() -> None:
    [obs], issues = read(observation("8867-4", 88, "/min"))
    assert (obs.kind, obs.value, obs.unit, obs.usable) == ("heart_rate", 88.0, "/min", True)
    assert obs.effective_utc == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert obs.effective_source == "2024-05-01T10:00:00+02:00"
    assert obs.provenance == PROV
    assert issues == []


def test_a_temperature_in_fahrenheit_is_stored_in_celsius() -> None:
    [obs], _ = read(observation("8310-5", 100.4, "[degF]"))
    assert obs.value == pytest.approx(38.0, rel=1e-12)
    assert (obs.unit, obs.source_value, obs.source_unit) == ("Cel", 100.4, "[degF]")


def test_glucose_in_mmol_per_l_is_stored_in_mg_per_dl() -> None:
    [obs], _ = read(observation("15074-8", 10, "mmol/L"))
    assert obs.value == pytest.approx(180.156, rel=1e-9)


def test_2708_6_is_pulse_oximetry_in_a_vital_signs_observation() -> None:
    [obs], _ = read(observation("2708-6", 95, "%", category=VITAL))
    assert obs.kind == "spo2"


def test_2708_6_is_pulse_oximetry_when_59408_5_is_also_coded() -> None:
    resource = observation("2708-6", 95, "%")
    resource["code"]["coding"].append({"system": LOINC, "code": "59408-5"})
    [obs], _ = read(resource)
    assert obs.kind == "spo2"


def test_2708_6_alone_is_arterial_saturation() -> None:
    [obs], _ = read(observation("2708-6", 95, "%"))
    assert obs.kind == "sao2"


def test_a_blood_pressure_panel_gives_one_value_per_component() -> None:
    resource = observation(
        "85354-9",
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 118, "system": UCUM, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 76, "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    )
    observations, issues = read(resource)
    assert [(o.kind, o.value) for o in observations] == [("sbp", 118.0), ("dbp", 76.0)]
    assert issues == []


def test_a_panel_of_members_needs_no_value_and_raises_no_issue() -> None:
    observations, issues = read(observation("85353-1", hasMember=[{"reference": "Observation/hr"}]))
    assert observations == [] and issues == []


def test_an_unknown_code_is_an_issue_not_a_silent_drop() -> None:
    observations, issues = read(observation("99999-9", 1, "1"))
    assert observations == []
    assert [issue.reason for issue in issues] == [ExclusionReason.UNMAPPED_CODE]


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ({"coding": [{"system": "http://example.org/acvpu", "code": "V"}]}, "V"),
        ({"text": "Alert"}, "A"),
        ({"text": "New confusion"}, "C"),
        ({"coding": [{"system": LOINC, "code": "LA-x", "display": "Responds to pain"}]}, "P"),
        ({"text": "Unresponsive"}, "U"),
    ],
)
def test_consciousness_answers_map_to_acvpu(answer: dict[str, Any], letter: str) -> None:
    [obs], _ = read(observation("67775-7", valueCodeableConcept=answer))
    assert (obs.kind, obs.code_value, obs.value, obs.usable) == ("consciousness", letter, None, True)


def test_an_ambiguous_consciousness_answer_is_not_guessed() -> None:
    [obs], _ = read(observation("67775-7", valueCodeableConcept={"text": "alert but confused"}))
    assert (obs.code_value, obs.excluded) == (None, ExclusionReason.UNMAPPED_CODE)


@pytest.mark.parametrize(
    ("code", "value", "unit", "therapy"),
    [
        ("3150-0", 40, "%", "oxygen"),
        ("3150-0", 21, "%", "air"),
        ("3151-8", 2, "L/min", "oxygen"),
        ("3151-8", 0, "L/min", "air"),
    ],
)
def test_fio2_and_oxygen_flow_derive_air_or_oxygen(code: str, value: float, unit: str, therapy: str) -> None:
    observations, _ = read(observation(code, value, unit))
    derived = [o for o in observations if o.kind == "oxygen_therapy"]
    assert [o.code_value for o in derived] == [therapy]


def test_an_entered_in_error_value_is_kept_out_with_its_source() -> None:
    [obs], _ = read(observation("8310-5", 39, "Cel", status="entered-in-error"))
    assert (obs.value, obs.excluded, obs.source_value) == (None, ExclusionReason.ENTERED_IN_ERROR, 39.0)


def test_a_cancelled_observation_is_excluded() -> None:
    [obs], _ = read(observation("8310-5", status="cancelled"))
    assert obs.excluded is ExclusionReason.CANCELLED


def test_a_data_absent_reason_excludes_the_value() -> None:
    [obs], _ = read(observation("8867-4", dataAbsentReason={"text": "not performed"}))
    assert obs.excluded is ExclusionReason.DATA_ABSENT


@pytest.mark.parametrize("value", [1e245, -1e245, 400.0, float("inf"), float("nan")])
def test_impossible_values_are_out_of_range(value: float) -> None:
    [obs], _ = read(observation("8867-4", value, "/min"))
    assert (obs.value, obs.excluded) == (None, ExclusionReason.OUT_OF_RANGE)


def test_a_value_of_the_wrong_json_type_is_no_value() -> None:
    for garbage in ("88", True, [88], {"v": 88}):
        [obs], _ = read(observation("8867-4", garbage, "/min"))
        assert (obs.value, obs.excluded) == (None, ExclusionReason.NO_VALUE)


def test_a_unit_of_the_wrong_dimension_is_unconvertible_and_keeps_its_source() -> None:
    [obs], _ = read(observation("29463-7", 70, "cm"))
    assert (obs.value, obs.excluded, obs.source_value, obs.source_unit) == (
        None,
        ExclusionReason.UNCONVERTIBLE_UNIT,
        70.0,
        "cm",
    )


def test_a_lactate_sent_in_a_temperature_unit_is_unconvertible_not_unreadable() -> None:
    # Lactate converts through its molar mass when the units differ; an offset unit used to break that conversion,
    # and the whole resource was lost as "unreadable" instead of kept with its reason.
    [obs], issues = read(observation("2524-7", 2.0, "Cel"))
    assert (obs.kind, obs.value, obs.excluded, obs.source_value) == (
        "lactate",
        None,
        ExclusionReason.UNCONVERTIBLE_UNIT,
        2.0,
    )
    assert issues == []


def test_a_value_without_any_time_is_excluded() -> None:
    resource = observation("8867-4", 70, "/min")
    del resource["effectiveDateTime"]
    [obs], _ = read(resource)
    assert obs.excluded is ExclusionReason.NO_EFFECTIVE_TIME


def test_issued_is_the_time_when_no_effective_time_is_given() -> None:
    resource = observation("8867-4", 70, "/min", issued="2013-04-04T14:34:00+01:00")
    del resource["effectiveDateTime"]
    [obs], _ = read(resource)
    assert obs.effective_utc == datetime(2013, 4, 4, 13, 34, tzinfo=UTC)


def test_a_vital_sign_in_its_canonical_unit_is_read_in_one_pass() -> None:
    resource = observation("8867-4", 88, "/min")
    assert read_plain_observation(resource, PROV) == read(resource)[0][0]
    assert read_plain_observation(observation("8867-4", 88, "{beats}/min"), PROV) is None  # a unit to convert


def test_a_vital_sign_coded_twice_is_read_in_one_pass_unless_a_code_asks_for_more() -> None:
    own = {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679", "code": "5", "display": "Pulse"}
    twice = observation("8867-4", 88, "/min")
    twice["code"]["coding"].insert(0, own)
    assert read_plain_observation(twice, PROV) == read(twice)[0][0]
    assert read_plain_observation(twice, PROV) == read_plain_observation(observation("8867-4", 88, "/min"), PROV)
    # A second LOINC code that read_observation reads differently, or a code that may raise a care flag: the
    # general reader decides.
    for other in ("2708-6", CONSCIOUSNESS_LOINC, next(iter(FLAG_CODE_VALUES))):
        resource = observation("8867-4", 88, "/min")
        resource["code"]["coding"].insert(0, {"system": LOINC, "code": other})
        assert read_plain_observation(resource, PROV) is None


@settings(max_examples=400, deadline=None)
@given(
    resource=st.one_of(near_plain_observations(), multi_coded_observations(), observations(), mangled_observations())
)
def test_a_plain_observation_is_exactly_what_read_observation_gives_and_raises_no_flag(
    resource: dict[str, Any],
) -> None:
    plain = read_plain_observation(resource, PROV)
    if plain is not None:
        general, issues = read(resource)
        assert repr([plain]) == repr(general)  # repr, not ==: the types of the numbers must agree too
        assert [plain] == general and issues == []
        assert not may_flag(resource.get("code"))
