"""CDS Hooks 2.0.1, section "Cross-Origin Resource Sharing": browser-based clients call every endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conformance.conftest import hook_request

ORIGIN = "https://ehr.example.org"


@pytest.mark.parametrize("path", ["/cds-services", "/cds-services/pv-test", "/cds-services/pv-test/feedback"])
def test_ch40_preflight_is_answered_for_every_endpoint(client: TestClient, path: str) -> None:
    """§CORS: OPTIONS preflight allows the method and the Authorization and Content-Type headers."""
    response = client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_ch41_actual_requests_carry_the_cors_header(client: TestClient, spec_examples: Path) -> None:
    """§CORS: GET discovery and POST hook responses carry Access-Control-Allow-Origin."""
    discovery = client.get("/cds-services", headers={"Origin": ORIGIN})
    hook = client.post(
        "/cds-services/pv-test", json=hook_request(spec_examples, "patient-view"), headers={"Origin": ORIGIN}
    )

    assert discovery.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert hook.headers["access-control-allow-origin"] in ("*", ORIGIN)
