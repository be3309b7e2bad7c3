"""Prefetch templates: what the catalogue refuses at load, and the relative URL each call renders."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from hypothesis import given

from api.catalog import ServiceCatalog
from api.prefetch import (
    TemplateError,
    UnfulfillableTemplateError,
    render_template,
    validate_service_prefetch,
    validate_template,
)
from tests.strategies import url_hostile_text

CONTEXT = {"userId": "Practitioner/example", "patientId": "1288992", "encounterId": "89284"}


def _spec_templates(shared_data: Path, name: str) -> dict[str, str]:
    templates: dict[str, str] = json.loads((shared_data / "cds-hooks-examples" / name).read_text())["prefetch"]
    return templates


def _fix_sort(template: str) -> str:
    return template.replace("sort:desc=date", "_sort=-date")


@pytest.mark.parametrize(
    "name", ["spec2.0.1_discovery-prefetch-templates.json", "spec2.0.1_discovery-prefetch-hba1c.json"]
)
def test_the_spec_discovery_templates_pass_once_their_sort_is_fixed(shared_data: Path, name: str) -> None:
    templates = _spec_templates(shared_data, name)
    as_published = validate_service_prefetch("patient-view", templates)
    fixed = validate_service_prefetch("patient-view", {k: _fix_sort(t) for k, t in templates.items()})
    assert fixed == []
    assert as_published == [
        "prefetch 'hemoglobin-a1c': 'sort' is not a FHIR search parameter: use _sort=-date for newest first"
    ]


def test_the_spec_discovery_templates_render_for_the_spec_request(shared_data: Path) -> None:
    templates = {
        k: _fix_sort(t) for k, t in _spec_templates(shared_data, "spec2.0.1_discovery-prefetch-templates.json").items()
    }
    role_user = {**CONTEXT, "userId": "PractitionerRole/123"}
    rendered = {key: render_template(template, role_user) for key, template in templates.items()}
    assert rendered == {
        "patient": "Patient/1288992",
        "hemoglobin-a1c": "Observation?patient=1288992&code=4548-4&_count=1&_sort=-date",
        "diabetes-type2": "Condition?patient=1288992&code=44054006&category=problem-list-item&status=active",
        "user": "PractitionerRole?_id=123",
    }


def test_the_bundled_service_catalogue_has_valid_prefetch_templates() -> None:
    services = list(ServiceCatalog.load())
    assert services
    assert [p for service in services for p in validate_service_prefetch(service.hook, service.prefetch)] == []


@pytest.mark.parametrize(
    ("token", "user_id"),
    [
        ("userPractitionerId", "Practitioner/abc"),
        ("userPractitionerRoleId", "PractitionerRole/abc"),
        ("userPatientId", "Patient/abc"),
        ("userRelatedPersonId", "RelatedPerson/abc"),
    ],
)
def test_each_user_token_is_the_id_of_a_user_of_its_type(token: str, user_id: str) -> None:
    assert validate_template(f"X?_id={{{{{token}}}}}") == []
    assert render_template(f"X?_id={{{{{token}}}}}", {**CONTEXT, "userId": user_id}) == "X?_id=abc"


@pytest.mark.parametrize("token", ["userPractitionerRoleId", "userPatientId", "userRelatedPersonId"])
def test_a_user_token_of_another_resource_type_cannot_be_fulfilled(token: str) -> None:
    with pytest.raises(UnfulfillableTemplateError, match="the user is not a"):
        render_template(f"X?_id={{{{{token}}}}}", CONTEXT)


def test_the_user_id_token_reads_the_user_keeping_the_slash() -> None:
    assert render_template("{{context.userId}}", CONTEXT) == "Practitioner/example"


def test_context_tokens_render_in_path_and_query_and_tolerate_inner_spaces() -> None:
    template = "Encounter/{{ context.encounterId }}?patient={{context.patientId}}"
    assert render_template(template, CONTEXT) == "Encounter/89284?patient=1288992"


def test_numbers_and_booleans_render_as_json_writes_them() -> None:
    context = {"count": 3, "flag": True}
    assert render_template("X?a={{context.count}}&b={{context.flag}}", context) == "X?a=3&b=true"


def test_values_in_a_query_cannot_add_parameters_or_alternatives() -> None:
    rendered = render_template("Observation?patient={{context.patientId}}&code=1", {"patientId": "1&code=2,3|x y"})
    assert rendered == "Observation?patient=1%26code%3D2%2C3%7Cx%20y&code=1"
    assert parse_qsl(rendered.partition("?")[2]) == [("patient", "1&code=2,3|x y"), ("code", "1")]


def test_a_value_in_the_path_cannot_climb_out_of_the_resource_type() -> None:
    with pytest.raises(UnfulfillableTemplateError):
        render_template("Patient/{{context.patientId}}", {"patientId": "../Practitioner"})
    assert render_template("Patient/{{context.patientId}}", {"patientId": "a?b#c"}) == "Patient/a%3Fb%23c"


@given(url_hostile_text)
def test_any_context_value_survives_a_query_round_trip(value: str) -> None:
    rendered = render_template("Observation?subject={{context.patientId}}&_count=5", {"patientId": value})
    query = rendered.partition("?")[2]
    assert parse_qsl(query, keep_blank_values=True, strict_parsing=True) == [("subject", value), ("_count", "5")]


def test_an_absent_optional_context_field_leaves_the_template_unfulfilled() -> None:
    with pytest.raises(UnfulfillableTemplateError, match=r"context\.encounterId is absent"):
        render_template("Encounter/{{context.encounterId}}", {"patientId": "1"})


def test_an_array_context_value_at_call_time_leaves_the_template_unfulfilled() -> None:
    with pytest.raises(UnfulfillableTemplateError, match="array or object"):
        render_template("X?id={{context.selections}}", {"selections": ["a", "b"]})


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Patient/{{context.patient.id}}", "only root-level context fields"),
        ("PractitionerRole?_id={{userPractitioneRoleId}}", "unknown token {{userPractitioneRoleId}}"),
        ("Patient/{{patientId}}", "unknown token {{patientId}}"),
        ("Patient/{{context.patientId}", "unbalanced"),
        ("https://evil.example/Patient/{{context.patientId}}", "relative FHIR URL"),
        ("/Patient/{{context.patientId}}", "relative FHIR URL"),
        ("Patient?name=a b", "whitespace"),
        ("   ", "empty"),
    ],
)
def test_malformed_templates_are_refused_with_a_reason(template: str, problem: str) -> None:
    problems = validate_template(template)
    assert len(problems) == 1
    assert problem in problems[0]


def test_an_unknown_token_that_slipped_past_validation_is_a_configuration_error() -> None:
    with pytest.raises(TemplateError):
        render_template("Patient/{{patientId}}", CONTEXT)


@pytest.mark.parametrize("field", ["draftOrders", "selections"])
def test_array_or_object_context_fields_are_refused_when_the_catalogue_loads(field: str) -> None:
    problems = validate_service_prefetch("order-select", {"orders": f"X?id={{{{context.{field}}}}}"})
    assert problems == [
        f"prefetch 'orders': {{{{context.{field}}}}}: context.{field} is an array or object, not a simple value"
    ]


def test_a_context_field_the_hook_does_not_have_is_refused_when_the_catalogue_loads() -> None:
    problems = validate_service_prefetch("patient-view", {"p": "Patient/{{context.patientID}}"})
    assert problems == ["prefetch 'p': {{context.patientID}}: the hook has no context field 'patientID'"]


def test_a_hook_without_a_known_context_only_gets_the_generic_checks() -> None:
    assert validate_service_prefetch("appointment-book", {"p": "Patient/{{context.anything}}"}) == []
