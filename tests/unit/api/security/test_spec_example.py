"""The CDS Hooks 2.0.1 example token and key pair: a fixture for the signature check, never a trusted key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import KeySet, import_key

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.key_cache import parse_key_set
from api.security.settings import SecuritySettings, TrustedIssuer, is_spec_test_key
from tests.unit.api.security.tokens import FakeClock, SigningKey, claims, harness, mint

SPEC_ISS = "https://fhir-ehr.example.com/"
SPEC_JKU = "https://fhir-ehr.example.com/jwk_uri"
SPEC_AUDIENCE = "https://cds.example.org/cds-services/some-service"
SPEC_EXP = 1422568860


def _read(folder: Path, name: str) -> Any:
    return json.loads((folder / "cds-hooks-examples" / name).read_text(encoding="utf-8"))


@pytest.fixture
def spec_token(shared_data: Path) -> str:
    return (shared_data / "cds-hooks-examples" / "spec2.0.1_jwt-example-token.txt").read_text().strip()


@pytest.fixture
def spec_public_jwks(shared_data: Path) -> dict[str, Any]:
    document: dict[str, Any] = _read(shared_data, "spec2.0.1_jwks-public.json")
    return document


@pytest.fixture
def spec_private_key(shared_data: Path) -> SigningKey:
    return SigningKey(import_key(_read(shared_data, "spec2.0.1_jwk-private-TEST-ONLY.json")), "ES384")


def _spec_issuer_settings(*, allow_spec_test_key: bool, max_lifetime_s: int = 300) -> SecuritySettings:
    return SecuritySettings(
        enabled=True,
        issuers=(TrustedIssuer(iss=SPEC_ISS, allowed_jku=(SPEC_JKU,)),),
        allow_spec_test_key=allow_spec_test_key,
        max_token_lifetime_seconds=max_lifetime_s,
    )


def test_the_spec_example_signature_verifies_with_the_spec_public_jwks(
    spec_token: str, spec_public_jwks: dict[str, Any], shared_data: Path
) -> None:
    verified = jws.deserialize_compact(spec_token, KeySet.import_key_set(spec_public_jwks), algorithms=["ES384"])  # type: ignore[arg-type]
    assert verified.headers() == _read(shared_data, "spec2.0.1_jwt-header.json")
    assert json.loads(verified.payload or b"") == _read(shared_data, "spec2.0.1_jwt-payload.json")


def test_the_spec_example_token_is_refused_as_expired_even_with_its_key_trusted(
    spec_token: str, spec_public_jwks: dict[str, Any]
) -> None:
    settings = _spec_issuer_settings(allow_spec_test_key=True)
    checks = harness(settings, documents={SPEC_JKU: spec_public_jwks})

    with pytest.raises(EhrAuthenticationError) as refused:
        checks.verify(spec_token, audience=SPEC_AUDIENCE)

    assert refused.value.reason is RejectReason.EXPIRED


def test_the_spec_example_token_is_accepted_only_at_a_time_it_was_valid(
    spec_token: str, spec_public_jwks: dict[str, Any]
) -> None:
    # The example was issued 3.5 years before it expires, far beyond our lifetime bound; lifting the bound for this
    # test shows that expiry is the one thing that stops the example, and that the rest of the path accepts it.
    lenient = _spec_issuer_settings(allow_spec_test_key=True, max_lifetime_s=3600)
    lenient = lenient.model_copy(update={"max_token_lifetime_seconds": 10**9})
    checks = harness(lenient, documents={SPEC_JKU: spec_public_jwks}, clock=FakeClock(SPEC_EXP - 60))

    client = checks.verify(spec_token, audience=SPEC_AUDIENCE)

    assert (client.iss, client.sub, client.tenant) == (SPEC_ISS, None, "2ddd6c3a-8e9a-44c6-a305-52111ad302a2")
    assert client.actor == SPEC_ISS


def test_the_spec_key_is_ignored_unless_a_test_allows_it(spec_public_jwks: dict[str, Any]) -> None:
    assert is_spec_test_key(spec_public_jwks["keys"][0])
    assert parse_key_set(spec_public_jwks, allow_spec_test_key=False) == {}
    assert set(parse_key_set(spec_public_jwks, allow_spec_test_key=True)) == {"example-kid"}


def test_a_fresh_token_signed_with_the_spec_private_key_is_refused_by_default(
    spec_private_key: SigningKey, spec_public_jwks: dict[str, Any]
) -> None:
    settings = _spec_issuer_settings(allow_spec_test_key=False)
    checks = harness(settings, documents={SPEC_JKU: spec_public_jwks})
    token = mint(spec_private_key, claims(iss=SPEC_ISS), jku=SPEC_JKU)

    with pytest.raises(EhrAuthenticationError) as refused:
        checks.verify(token)

    assert refused.value.reason is RejectReason.UNKNOWN_KID


def test_a_fresh_token_signed_with_the_spec_private_key_is_accepted_when_the_test_key_is_allowed(
    spec_private_key: SigningKey, spec_public_jwks: dict[str, Any]
) -> None:
    settings = _spec_issuer_settings(allow_spec_test_key=True)
    checks = harness(settings, documents={SPEC_JKU: spec_public_jwks})
    token = mint(spec_private_key, claims(iss=SPEC_ISS), jku=SPEC_JKU)

    assert checks.verify(token).iss == SPEC_ISS
