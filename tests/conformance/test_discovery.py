"""CDS Hooks 2.0.1, section "Discovery"."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.schemas import DiscoveryResponse
from tests.conformance.conftest import HOOK_SERVICES, load_example


def _walk(value: object) -> list[object]:
    if isinstance(value, dict):
        return [value, *(item for v in value.values() for item in _walk(v))]
    if isinstance(value, list):
        return [value, *(item for v in value for item in _walk(v))]
    return [value]


def test_ch01_discovery_lists_every_service_with_hook_id_title_description(client: TestClient) -> None:
    """§Discovery: GET {baseURL}/cds-services returns {"services": [...]} with hook, id, description (required)."""
    response = client.get("/cds-services")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = DiscoveryResponse.model_validate(response.json())
    ids = {s.id for s in body.services}
    assert set(HOOK_SERVICES.values()) <= ids
    assert {s.hook for s in body.services} >= set(HOOK_SERVICES)
    assert all(s.title and s.description for s in body.services)


def test_ch02_discovery_has_no_null_or_empty_members_anywhere(client: TestClient) -> None:
    """§Discovery: optional members are left out, never sent as null or empty."""
    body = client.get("/cds-services").json()

    assert all(item not in (None, "", [], {}) for item in _walk(body)[1:])


def test_ch03_discovery_states_prefetch_templates_and_usage_requirements(client: TestClient) -> None:
    """§Discovery / §Prefetch Template: services advertise their prefetch templates and usage requirements."""
    services = {s["id"]: s for s in client.get("/cds-services").json()["services"]}

    news2 = services["deterioration-news2"]
    assert news2["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "{{context.patientId}}" in news2["prefetch"]["vitals"]
    assert news2["usageRequirements"]


def test_ch04_the_specifications_discovery_example_passes_our_discovery_schema(spec_examples: Path) -> None:
    """§Discovery: the schema our responses are held to accepts the specification's own example."""
    example = load_example(spec_examples, "spec2.0.1_discovery-response.json")

    assert len(DiscoveryResponse.model_validate(example).services) == 3
