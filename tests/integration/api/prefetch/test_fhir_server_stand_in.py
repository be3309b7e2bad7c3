"""The FHIR server stand-in other tests rely on: it serves, pages, records and fails as it promises."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir_server import FhirServerStandIn

PATIENT = {"resourceType": "Patient", "id": "p1"}


def _observation(number: int, patient: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "id": f"o{number}",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    }


def test_it_reads_resources_and_answers_404_with_an_operation_outcome(fhir_server: FhirServerStandIn) -> None:
    fhir_server.add(PATIENT)
    assert httpx.get(f"{fhir_server.base_url}/Patient/p1").json() == PATIENT
    missing = httpx.get(f"{fhir_server.base_url}/Patient/p2")
    assert (missing.status_code, missing.json()["resourceType"]) == (404, "OperationOutcome")


def test_it_searches_by_patient_and_code_and_pages_with_next_links(fhir_server: FhirServerStandIn) -> None:
    fhir_server.add(*(_observation(n, "p1") for n in range(3)), _observation(9, "p2"))
    first = httpx.get(f"{fhir_server.base_url}/Observation", params={"subject": "p1", "code": "8867-4", "_count": 2})
    page = first.json()
    assert [e["resource"]["id"] for e in page["entry"]] == ["o0", "o1"]
    assert page["total"] == 3
    [next_url] = [link["url"] for link in page["link"] if link["relation"] == "next"]
    last = httpx.get(next_url).json()
    assert [e["resource"]["id"] for e in last["entry"]] == ["o2"]
    assert [link["relation"] for link in last["link"]] == ["self"]


def test_it_records_the_path_query_and_bearer_token(fhir_server: FhirServerStandIn) -> None:
    httpx.get(f"{fhir_server.base_url}/Condition?patient=p1&status=active", headers={"Authorization": "Bearer t"})
    [seen] = fhir_server.requests
    assert (seen.method, seen.path, seen.query, seen.authorization) == (
        "GET",
        "Condition",
        (("patient", "p1"), ("status", "active")),
        "Bearer t",
    )


def test_faults_spare_the_first_requests_and_can_target_a_path(fhir_server: FhirServerStandIn) -> None:
    fhir_server.add(PATIENT)
    fhir_server.fail(503, after=1, path="Patient")
    fhir_server.invalid_json(path="Observation")
    statuses = [httpx.get(f"{fhir_server.base_url}/Patient/p1").status_code for _ in range(2)]
    assert statuses == [200, 503]
    with pytest.raises(ValueError, match="Expecting"):
        httpx.get(f"{fhir_server.base_url}/Observation").json()


def test_it_refuses_a_wrong_token_when_told_to(fhir_server: FhirServerStandIn) -> None:
    fhir_server.require_token("right")
    assert httpx.get(f"{fhir_server.base_url}/Patient", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{fhir_server.base_url}/Patient", headers={"Authorization": "Bearer right"}).status_code == 200


def test_once_stopped_it_refuses_connections(fhir_server: FhirServerStandIn) -> None:
    fhir_server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fhir_server.base_url}/Patient/p1", timeout=2)
