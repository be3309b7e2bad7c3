"""Operations endpoints beside the CDS Hooks ones: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.conformance.conftest import hook_request


def test_readyz_reports_each_check_and_is_ready_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "schema_current": True, "scorers_loaded": True}


def test_metrics_count_hook_latency_and_failures_by_service_without_patient_labels(
    client: TestClient, spec_examples: Path
) -> None:
    client.post("/cds-services/pv-test", json=hook_request(spec_examples, "patient-view"))
    client.post("/cds-services/broken-test", json=hook_request(spec_examples, "patient-view"))

    text = client.get("/metrics").text

    assert 'cds_hook_latency_seconds_count{outcome="ok",service="pv-test"}' in text
    assert 'cds_hook_failures_total{cause="RuntimeError",service="broken-test"}' in text
    assert "patient" not in text.lower()
