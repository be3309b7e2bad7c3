"""CDS Hooks 2.0.1, sections "Calling a CDS Service" (HTTP Request) and the hooks' context (library hooks 1.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conformance.conftest import HOOK_SERVICES, hook_request, load_example


@pytest.mark.parametrize("hook", sorted(HOOK_SERVICES))
def test_ch10_each_supported_hook_is_answered_with_cards(client: TestClient, spec_examples: Path, hook: str) -> None:
    """§Calling a CDS Service: a well-formed request to each hook's service answers 200 with a cards array."""
    response = client.post(f"/cds-services/{HOOK_SERVICES[hook]}", json=hook_request(spec_examples, hook))

    assert response.status_code == 200, response.text
    assert isinstance(response.json()["cards"], list)
    assert response.json()["cards"]


@pytest.mark.parametrize("member", ["hook", "hookInstance", "context"])
def test_ch11_a_request_missing_a_required_member_is_refused_with_400(
    client: TestClient, spec_examples: Path, member: str
) -> None:
    """§HTTP Request: hook, hookInstance and context are required."""
    body = hook_request(spec_examples, "patient-view")
    del body[member]

    response = client.post("/cds-services/pv-test", json=body)

    assert response.status_code == 400
    assert member in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("hook", "field"),
    [
        ("patient-view", "patientId"),
        ("patient-view", "userId"),
        ("order-select", "selections"),
        ("order-select", "draftOrders"),
        ("order-sign", "draftOrders"),
        ("encounter-start", "encounterId"),
        ("encounter-discharge", "encounterId"),
    ],
)
def test_ch12_a_context_missing_a_required_field_of_its_hook_is_refused_with_400(
    client: TestClient, spec_examples: Path, hook: str, field: str
) -> None:
    """§Hooks: each hook's required context fields (library hooks 1.0.1) must be present."""
    body = hook_request(spec_examples, hook)
    del body["context"][field]

    response = client.post(f"/cds-services/{HOOK_SERVICES[hook]}", json=body)

    assert response.status_code == 400
    assert f"context.{field}" in response.json()["error"]["message"]


def test_ch13_a_request_for_another_hook_than_the_services_is_refused(client: TestClient, spec_examples: Path) -> None:
    """§Calling a CDS Service: the hook named in the request must be the one the service is registered for."""
    body = hook_request(spec_examples, "order-sign")

    response = client.post("/cds-services/pv-test", json=body)

    assert response.status_code == 400


def test_ch14_an_unknown_service_id_is_404(client: TestClient, spec_examples: Path) -> None:
    """§Calling a CDS Service: POST {baseURL}/cds-services/{service.id} for an id that discovery never listed."""
    response = client.post("/cds-services/no-such-service", json=hook_request(spec_examples, "patient-view"))

    assert response.status_code == 404


def test_ch15_fhir_authorization_without_fhir_server_is_refused(client: TestClient, spec_examples: Path) -> None:
    """§HTTP Request: fhirAuthorization is only meaningful with fhirServer (cds-r-1)."""
    fragment = load_example(spec_examples, "spec2.0.1_request-fhirAuthorization-fragment.json")
    body = hook_request(spec_examples, "patient-view", fhirAuthorization=fragment["fhirAuthorization"])

    response = client.post("/cds-services/pv-test", json=body)

    assert response.status_code == 400
    assert "fhirServer" in response.json()["error"]["message"]


def test_ch16_unknown_members_and_extensions_are_tolerated(client: TestClient, spec_examples: Path) -> None:
    """§Extensions: a service must accept requests carrying `extension` and members it does not know."""
    example = load_example(spec_examples, "spec2.0.1_request-with-extension.json")
    body = hook_request(spec_examples, "patient-view", extension=example.get("extension", {"x": 1}))
    body["context"]["extension"] = {"org.example.flag": True}
    body["somethingNew"] = {"a": 1}

    response = client.post("/cds-services/pv-test", json=body)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"\xff\xfe\x00", "application/json")],
)
def test_ch17_a_body_that_is_not_a_json_object_is_400(client: TestClient, payload: bytes, content_type: str) -> None:
    """§HTTP Request: the body is a JSON object; anything else is a client error, never a 500."""
    response = client.post("/cds-services/pv-test", content=payload, headers={"Content-Type": content_type})

    assert response.status_code == 400
