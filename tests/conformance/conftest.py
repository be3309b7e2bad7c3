"""A service configured with one CDS service per supported hook (fake scorers and policies beside the bundled
NEWS2 service), served in-process on a real database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.catalog import ServiceCatalog, ServiceDefinition
from api.security import SecuritySettings
from cdsctl.bootstrap import build_container, create_app_from_container
from cdsctl.settings import Settings
from policy.port import Action, ActionType, SuggestedAction, Suggestion
from store import migrate
from tests.fakes import FakeScorer, ScriptedPolicy

DEADLINE_S = 0.5

SUGGESTION = Suggestion(
    label="Order a serum lactate",
    is_recommended=True,
    actions=(
        SuggestedAction(
            type=ActionType.CREATE,
            description="Create a lactate order",
            resource={"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal"},
        ),
    ),
)


def _service(service_id: str, hook: str, scorer: str, policy: str) -> ServiceDefinition:
    return ServiceDefinition.model_validate(
        {
            "id": service_id,
            "hook": hook,
            "title": f"Test service {service_id}",
            "description": f"A {hook} service for the conformance suite.",
            "scorers": [scorer],
            "policy": policy,
            "prefetch": {"patient": "Patient/{{context.patientId}}"},
            "card": {
                "overrideReasons": [
                    {"code": "already-addressed", "system": "urn:test:override", "display": "Already addressed"}
                ],
                "links": [{"label": "Reference", "url": "https://example.org/reference", "type": "absolute"}],
            },
        }
    )


HOOK_SERVICES = {
    "patient-view": "pv-test",
    "order-select": "select-test",
    "order-sign": "sign-test",
    "encounter-start": "start-test",
    "encounter-discharge": "discharge-test",
}


def conformance_catalog() -> ServiceCatalog:
    services = list(ServiceCatalog.load())
    services += [_service(sid, hook, "fake-high", "suggesting") for hook, sid in HOOK_SERVICES.items()]
    services += [
        _service("slow-test", "patient-view", "fake-slow", "suggesting"),
        _service("broken-test", "patient-view", "fake-broken", "suggesting"),
        _service("quiet-test", "patient-view", "fake-high", "suppressing"),
    ]
    return ServiceCatalog(services)


@pytest.fixture(scope="module")
def client(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    migrate.upgrade(module_database_url)
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=module_database_url,
        hook_deadline_seconds=DEADLINE_S,
        pseudonym_salt="conformance-salt",
        # The FHIR server stand-in of the prefetch tests listens on plain http on loopback.
        fhir_allow_http=True,
        # Authentication has its own suite (test_security.py); here every call is the anonymous development client.
        security=SecuritySettings(enabled=False),
    )
    container = build_container(
        settings,
        catalog=conformance_catalog(),
        extra_scorers=[
            FakeScorer("fake-high"),
            FakeScorer("fake-slow", delay_s=DEADLINE_S * 4),
            FakeScorer("fake-broken", error=RuntimeError("scorer failed")),
        ],
        extra_policies=[
            ScriptedPolicy("suggesting", suggestions=(SUGGESTION,)),
            ScriptedPolicy("suppressing", action=Action.SUPPRESS),
        ],
    )
    with TestClient(create_app_from_container(container)) as test_client:
        yield test_client
    container.engine.dispose()


@pytest.fixture(scope="session")
def spec_examples(shared_data: Path) -> Path:
    return shared_data / "cds-hooks-examples"


def load_example(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def hook_request(folder: Path, hook: str, **overrides: Any) -> dict[str, Any]:
    """A full request around the CDS Hooks library's context example for `hook`."""
    context = load_example(folder, f"lib1.0.1_{hook}_0.json")["context"]
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": {"patient": {"resourceType": "Patient", "id": str(context["patientId"])}},
    }
    body.update(overrides)
    return body
