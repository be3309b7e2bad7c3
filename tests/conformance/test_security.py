"""CDS Hooks 2.0.1, section "Trusting CDS Clients": every endpoint requires the EHR's signed JWT when security is on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.security import SecuritySettings, TrustedIssuer
from cdsctl.bootstrap import build_container, create_app_from_container
from cdsctl.settings import Settings
from store import migrate
from tests.conformance.conftest import conformance_catalog, hook_request, load_example
from tests.fakes import FakeScorer, ScriptedPolicy
from tests.unit.api.security.tokens import OMIT, ec_key, mint, rsa_key

ISSUER = "https://ehr.example.org"
BASE = "http://testserver"


@pytest.fixture(scope="module")
def secured(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    migrate.upgrade(module_database_url)
    keys = {"keys": [ec_key().public_jwk(), rsa_key().public_jwk()]}
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=module_database_url,
        pseudonym_salt="security-salt",
        security=SecuritySettings(enabled=True, issuers=(TrustedIssuer(iss=ISSUER, jwks=keys),)),
    )
    container = build_container(
        settings,
        catalog=conformance_catalog(),
        extra_scorers=[FakeScorer("fake-high"), FakeScorer("fake-slow"), FakeScorer("fake-broken")],
        extra_policies=[ScriptedPolicy("suggesting"), ScriptedPolicy("suppressing")],
    )
    with TestClient(create_app_from_container(container), base_url=BASE) as client:
        yield client
    container.engine.dispose()


def _token(path: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": f"{BASE}{path}", "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
    payload.update(claims)
    return mint(ec_key(), {k: v for k, v in payload.items() if v is not OMIT})


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_ch70_a_valid_es384_token_is_accepted_on_discovery_hook_and_feedback(
    secured: TestClient, spec_examples: Path
) -> None:
    """§Trusting CDS Clients: the JWT's aud is the URL called; discovery, service and feedback all check it."""
    discovery = secured.get("/cds-services", headers=_auth(_token("/cds-services")))
    hook = secured.post(
        "/cds-services/pv-test",
        json=hook_request(spec_examples, "patient-view"),
        headers=_auth(_token("/cds-services/pv-test")),
    )
    feedback = load_example(spec_examples, "spec2.0.1_feedback-overridden-no-reason.json")
    feedback["feedback"][0]["card"] = hook.json()["cards"][0]["uuid"]
    sent = secured.post(
        "/cds-services/pv-test/feedback", json=feedback, headers=_auth(_token("/cds-services/pv-test/feedback"))
    )

    assert (discovery.status_code, hook.status_code, sent.status_code) == (200, 200, 200)


@pytest.mark.parametrize("path", ["/cds-services", "/cds-services/pv-test", "/cds-services/pv-test/feedback"])
def test_ch71_every_endpoint_refuses_a_call_without_a_token(secured: TestClient, path: str) -> None:
    """§Trusting CDS Clients: no bearer token, no service; 401 with WWW-Authenticate: Bearer."""
    response = secured.get(path) if path == "/cds-services" else secured.post(path, json={})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": f"{BASE}/cds-services/other-service"},
        {"aud": f"{BASE}/cds-services/pv-test/"},
        {"iss": "https://intruder.example.com"},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 700},
        {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 3700},
        {"jti": OMIT},
    ],
    ids=["other-aud", "aud-trailing-slash", "unknown-iss", "expired", "future-iat", "no-jti"],
)
def test_ch72_a_token_with_a_wrong_claim_is_refused_with_the_same_401(
    secured: TestClient, spec_examples: Path, claims: dict[str, Any]
) -> None:
    """§Trusting CDS Clients: iss allow-listed, aud the exact URL, exp/iat checked, jti required."""
    response = secured.post(
        "/cds-services/pv-test",
        json=hook_request(spec_examples, "patient-view"),
        headers=_auth(_token("/cds-services/pv-test", **claims)),
    )

    assert response.status_code == 401
    assert response.json() == {"error": {"status": 401, "message": "authentication required"}}


def test_ch73_a_replayed_jti_is_refused(secured: TestClient, spec_examples: Path) -> None:
    """§Trusting CDS Clients: each jti is used once."""
    token = _token("/cds-services/pv-test")

    first = secured.post(
        "/cds-services/pv-test", json=hook_request(spec_examples, "patient-view"), headers=_auth(token)
    )
    second = secured.post(
        "/cds-services/pv-test", json=hook_request(spec_examples, "patient-view"), headers=_auth(token)
    )

    assert (first.status_code, second.status_code) == (200, 401)


def test_ch74_the_specifications_own_test_token_is_never_trusted(secured: TestClient, spec_examples: Path) -> None:
    """§Trusting CDS Clients: the spec's example key is public; a deployment must not accept its tokens."""
    token = (spec_examples / "spec2.0.1_jwt-example-token.txt").read_text().strip()

    response = secured.get("/cds-services", headers=_auth(token))

    assert response.status_code == 401
