"""Forged, stale and misdirected EHR tokens over HTTP: each gets the same 401 and leaves no record behind."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.hostile.conftest import ALLOWED_JKU, BASE, Service, auth, claims_for
from tests.unit.api.security.tokens import b64url, ec_key, hand_made, mint, rsa_key

HOOK_PATH = "/cds-services/pv-test"
UNAUTHORISED = {"error": {"status": 401, "message": "authentication required"}}


def _body() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "pt-token"},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "pt-token"}},
    }


def _call(service: Service, token: str) -> Any:
    return service.client.post(HOOK_PATH, json=_body(), headers={"Authorization": f"Bearer {token}"})


def _hs256_with_public_key_as_secret() -> str:
    """The classic key-confusion forgery: HMAC keyed with the (public) PEM of a trusted RSA key."""
    public_pem = (
        rsa_key()
        .private.raw_value.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key().kid}
    _, signing_input = hand_made(header, claims_for(HOOK_PATH), b"")
    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(signature)}"


def _alg_none() -> str:
    token, _ = hand_made({"alg": "none", "typ": "JWT", "kid": ec_key().kid}, claims_for(HOOK_PATH), b"")
    return token


def _stale(**claims: Any) -> str:
    return mint(ec_key(), claims_for(HOOK_PATH, **claims))


NOW = int(time.time())
FORGED = {
    "alg-none": _alg_none,
    "hs256-public-key-secret": _hs256_with_public_key_as_secret,
    "expired": lambda: _stale(iat=NOW - 900, exp=NOW - 700),
    "future-iat": lambda: _stale(iat=NOW + 3600, exp=NOW + 3700),
    "wrong-aud": lambda: _stale(aud=f"{BASE}/cds-services/select-test"),
    "aud-of-another-host": lambda: _stale(aud=f"https://cds.other.example{HOOK_PATH}"),
    "unknown-kid": lambda: mint(ec_key("ec-not-published"), claims_for(HOOK_PATH)),
    "jku-outside-allow-list": lambda: mint(ec_key(), claims_for(HOOK_PATH), jku="https://attacker.example/jwks.json"),
    "jku-allow-listed-prefix": lambda: mint(ec_key(), claims_for(HOOK_PATH), jku=ALLOWED_JKU + "/../evil"),
    "embedded-jwk": lambda: mint(ec_key(), claims_for(HOOK_PATH), jwk=ec_key("ec-attacker").public_jwk()),
}


@pytest.mark.parametrize("forge", FORGED.values(), ids=FORGED.keys())
def test_a_forged_or_misdirected_token_is_401_and_writes_nothing(service: Service, forge: Any) -> None:
    before = service.row_counts()

    response = _call(service, forge())

    assert response.status_code == 401
    assert response.json() == UNAUTHORISED
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert service.row_counts() == before


def test_a_replayed_jti_is_401_and_only_the_first_call_is_recorded(service: Service) -> None:
    token = mint(ec_key(), claims_for(HOOK_PATH))
    before = service.row_counts()

    first = _call(service, token)
    after_first = service.row_counts()
    second = _call(service, token)

    assert (first.status_code, second.status_code) == (200, 401)
    assert after_first["hook_calls"] == before["hook_calls"] + 1
    assert service.row_counts() == after_first


def test_a_new_token_reusing_a_spent_jti_is_401(service: Service) -> None:
    jti = str(uuid.uuid4())
    first = _call(service, mint(ec_key(), claims_for(HOOK_PATH, jti=jti)))
    before = service.row_counts()

    again = _call(service, mint(rsa_key(), claims_for(HOOK_PATH, jti=jti)))

    assert (first.status_code, again.status_code) == (200, 401)
    assert service.row_counts() == before


def test_a_valid_token_is_accepted_so_the_refusals_are_about_the_token(service: Service) -> None:
    response = service.client.post(HOOK_PATH, json=_body(), headers=auth(HOOK_PATH))

    assert response.status_code == 200, response.text


def test_a_token_for_the_hook_is_refused_on_its_feedback_endpoint(service: Service) -> None:
    before = service.row_counts()
    feedback = {
        "feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]
    }

    response = service.client.post(f"{HOOK_PATH}/feedback", json=feedback, headers=auth(HOOK_PATH))

    assert response.status_code == 401
    assert service.row_counts() == before
