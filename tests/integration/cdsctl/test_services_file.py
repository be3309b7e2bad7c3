"""CDS_SERVICES_FILE: a hospital offers its own services (which scorers, which policy, which prefetch) by
configuration; a catalogue that cannot run stops start-up with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.catalog import ServiceCatalogError
from api.pipeline import UnknownComponentError
from api.security import SecuritySettings
from cdsctl.bootstrap import build_container, create_app_from_container
from cdsctl.settings import Environment, Settings
from store import migrate
from tests.hook_requests import vitals_call

ONE_SERVICE = """
services:
  - id: ward-early-warning
    hook: patient-view
    title: Early warning on the ward
    description: NEWS2 and qSOFA together, decided by the deterioration policy.
    scorers: [news2, qsofa]
    policy: deterioration
    prefetch:
      patient: "Patient/{{context.patientId}}"
      vitals: "Observation?subject={{context.patientId}}&category=vital-signs"
"""


def _settings(tmp_path: Path, services: str) -> Settings:
    path = tmp_path / "services.yaml"
    path.write_text(services, encoding="utf-8")
    return Settings(
        environment=Environment.TEST,
        data_dir=tmp_path,
        services_file=path,
        security=SecuritySettings(enabled=False),
    )


def test_the_services_file_replaces_the_bundled_catalogue(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ONE_SERVICE)
    migrate.upgrade(settings.resolved_database_url)
    with TestClient(create_app_from_container(build_container(settings))) as client:
        discovery = client.get("/cds-services").json()
        answer = client.post("/cds-services/ward-early-warning", json=vitals_call("p-1"))
        bundled = client.post("/cds-services/deterioration-news2", json=vitals_call("p-1"))

    assert [s["id"] for s in discovery["services"]] == ["ward-early-warning"]
    assert answer.status_code == 200
    # Both configured scorers ran: the medium NEWS2 vitals give a NEWS2 card.
    assert {c["source"]["topic"]["code"] for c in answer.json()["cards"]} >= {"news2"}
    assert bundled.status_code == 404


def test_a_service_naming_an_unknown_scorer_stops_start_up(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ONE_SERVICE.replace("[news2, qsofa]", "[news2, news3]"))
    migrate.upgrade(settings.resolved_database_url)

    with pytest.raises(UnknownComponentError, match="news3"):
        build_container(settings)


@pytest.mark.parametrize(
    ("content", "problem"),
    [("services: [", "cannot read"), ("- just a list", "expected a mapping"), ("services:\n  - id: x\n", "title")],
)
def test_an_unreadable_services_file_is_refused_with_its_path(tmp_path: Path, content: str, problem: str) -> None:
    settings = _settings(tmp_path, content)
    migrate.upgrade(settings.resolved_database_url)

    with pytest.raises(ServiceCatalogError, match=problem) as refused:
        build_container(settings)
    assert "services.yaml" in str(refused.value)


def test_a_missing_services_file_is_refused_and_an_empty_setting_means_the_bundled_one(tmp_path: Path) -> None:
    settings = Settings(environment=Environment.TEST, data_dir=tmp_path, services_file=tmp_path / "absent.yaml")
    migrate.upgrade(settings.resolved_database_url)

    with pytest.raises(ServiceCatalogError, match=r"absent\.yaml"):
        build_container(settings)
    assert Settings(services_file="").services_file is None  # type: ignore[arg-type]
