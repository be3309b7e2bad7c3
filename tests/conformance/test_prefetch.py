"""CDS Hooks 2.0.1, sections "Providing FHIR Resources to a CDS Service": prefetch, FHIR resource access, 412."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.fhir_server import FhirServerStandIn

TOKEN = "opaque-access-token-for-tests"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"


def _vital(n: int, code: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"pf{n}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/pf-patient"},
        "effectiveDateTime": (datetime.now(UTC) - timedelta(minutes=20)).isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def _request(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": f"prefetch-{datetime.now(UTC).timestamp()}-{id(extra)}",
        "context": {"userId": "Practitioner/example", "patientId": "pf-patient"},
    }
    body.update(extra)
    return body


def _authorization(server: FhirServerStandIn) -> dict[str, Any]:
    return {
        "fhirServer": server.base_url,
        "fhirAuthorization": {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Observation.read",
            "subject": "cds-control-plane",
        },
    }


def test_ch60_prefetch_that_is_present_is_used_without_fetching(
    client: TestClient, fhir_server: FhirServerStandIn
) -> None:
    """§Prefetch: a key the CDS client sent is used as is; the service does not fetch it again."""
    body = _request(
        prefetch={"patient": {"resourceType": "Patient", "id": "pf-patient"}, "vitals": None},
        **_authorization(fhir_server),
    )

    response = client.post("/cds-services/deterioration-news2", json=body)

    assert response.status_code == 200, response.text
    assert fhir_server.requests == []


def test_ch61_missing_prefetch_is_fetched_from_the_fhir_server_with_the_bearer_token(
    client: TestClient, fhir_server: FhirServerStandIn
) -> None:
    """§FHIR Resource Access: keys the client did not send are fetched from fhirServer with its access token."""
    fhir_server.add(
        {"resourceType": "Patient", "id": "pf-patient", "gender": "male", "birthDate": "1940-01-01"},
        _vital(1, "9279-1", 26, "/min"),
        _vital(2, "8867-4", 135, "/min"),
    )

    response = client.post("/cds-services/deterioration-news2", json=_request(**_authorization(fhir_server)))

    assert response.status_code == 200, response.text
    assert {r.authorization for r in fhir_server.requests} == {f"Bearer {TOKEN}"}
    assert sorted(r.path for r in fhir_server.requests) == ["Observation", "Patient/pf-patient"]
    # RR 26 (3 points) + HR 135 (3 points), fetched, not sent: the card's score proves the data was used.
    assert response.json()["cards"][0]["summary"].startswith("NEWS2 6")


def test_ch62_null_prefetch_means_no_data_and_no_fetch(client: TestClient, fhir_server: FhirServerStandIn) -> None:
    """§Prefetch: a null value says the data does not exist; it is neither fetched nor an error."""
    body = _request(prefetch={"patient": None, "vitals": None}, **_authorization(fhir_server))

    response = client.post("/cds-services/deterioration-news2", json=body)

    assert response.status_code == 200
    assert fhir_server.requests == []


def test_ch63_missing_prefetch_without_a_fhir_server_is_412(client: TestClient) -> None:
    """§Providing FHIR Resources: a service that can neither use prefetch nor fetch answers 412."""
    response = client.post("/cds-services/deterioration-news2", json=_request())

    assert response.status_code == 412
    assert "vitals" in response.json()["error"]["message"]


def test_ch64_an_unreachable_fhir_server_is_412(client: TestClient, fhir_server: FhirServerStandIn) -> None:
    """§Providing FHIR Resources: when fetching fails, the service cannot give guidance: 412."""
    fhir_server.fail(503)

    response = client.post("/cds-services/deterioration-news2", json=_request(**_authorization(fhir_server)))

    assert response.status_code == 412
