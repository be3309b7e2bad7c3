"""The header and the issuer: typ, kid, jku and iss decide which key may verify a token, and only trusted ones do."""

from __future__ import annotations

from typing import Any

import pytest

from api.security.errors import EhrAuthenticationError, RejectReason
from tests.unit.api.security.tokens import (
    ISS,
    JWKS_URL,
    OMIT,
    OTHER_ISS,
    OTHER_JWKS_URL,
    Harness,
    claims,
    ec_key,
    harness,
    issuer,
    jwks,
    mint,
    rsa_key,
    security_settings,
)

JKU = "https://ehr.example.org/keys/current.json"


def _refusal(checks: Harness, token: str) -> RejectReason:
    with pytest.raises(EhrAuthenticationError) as refused:
        checks.verify(token)
    return refused.value.reason


def _two_issuers() -> Harness:
    other_key = ec_key("other-ec")
    return harness(
        security_settings(issuer(), issuer(OTHER_ISS)),
        documents={JWKS_URL: jwks(ec_key()), OTHER_JWKS_URL: jwks(other_key)},
    )


@pytest.mark.parametrize("typ", [OMIT, "jwt ", "JOSE", "at+jwt", None, 1])
def test_a_token_whose_typ_is_not_jwt_is_refused(typ: object) -> None:
    assert _refusal(harness(), mint(ec_key(), typ=typ)) is RejectReason.TYPE_NOT_JWT


@pytest.mark.parametrize("kid", [OMIT, "", None, 7])
def test_a_token_without_a_kid_is_refused(kid: object) -> None:
    assert _refusal(harness(), mint(ec_key(), kid=kid)) is RejectReason.KID_MISSING


@pytest.mark.parametrize("member", ["crit", "jwk", "x5u", "x5c"])
def test_a_token_that_brings_its_own_key_or_critical_extensions_is_refused(member: str) -> None:
    values: dict[str, Any] = {
        "crit": ["exp"],
        "jwk": ec_key().public_jwk(),
        "x5u": "https://evil.example/c",
        "x5c": ["AAAA"],
    }

    assert _refusal(harness(), mint(ec_key(), **{member: values[member]})) is RejectReason.UNSUPPORTED_HEADER


def test_an_unknown_kid_is_refused_after_exactly_one_refetch() -> None:
    checks = harness()
    checks.verify(mint(ec_key()))  # fetches and caches the JWKS
    checks.clock.now += 61  # the cached keys are still fresh, but a refetch is allowed again

    assert _refusal(checks, mint(ec_key("unlisted"))) is RejectReason.UNKNOWN_KID
    assert checks.server.fetches == [JWKS_URL, JWKS_URL]


def test_unknown_kids_do_not_make_us_refetch_more_than_once_per_interval() -> None:
    checks = harness()
    checks.verify(mint(ec_key()))

    for n in range(20):
        checks.clock.now += 5
        assert _refusal(checks, mint(ec_key(f"made-up-{n % 3}"))) is RejectReason.UNKNOWN_KID
    # 100 seconds of made-up kids after the first fetch: one refetch, at the 60-second mark.
    assert len(checks.server.fetches) == 2

    checks.clock.now += 61
    _refusal(checks, mint(ec_key("made-up-0")))
    assert len(checks.server.fetches) == 3


def test_a_key_added_by_rotation_is_found_by_the_refetch() -> None:
    checks = harness(documents={JWKS_URL: jwks(ec_key())})
    checks.verify(mint(ec_key()))
    checks.server.documents[JWKS_URL] = jwks(ec_key(), rsa_key())
    checks.clock.now += 61

    assert checks.verify(mint(rsa_key(), claims(iat=checks.clock.now, exp=checks.clock.now + 60))).iss == ISS


def test_a_kid_of_another_trusted_issuer_is_refused() -> None:
    # The other issuer's key signs a token claiming to come from ISS: each issuer's tokens use its own keys only.
    other_key = ec_key("other-ec")

    assert _refusal(_two_issuers(), mint(other_key, claims(iss=ISS))) is RejectReason.UNKNOWN_KID


def test_each_trusted_issuer_is_verified_with_its_own_keys() -> None:
    checks = _two_issuers()

    assert checks.verify(mint(ec_key("other-ec"), claims(iss=OTHER_ISS))).iss == OTHER_ISS
    assert checks.verify(mint(ec_key(), claims(iss=ISS))).iss == ISS


@pytest.mark.parametrize("iss", ["https://evil.example.org", ISS + "/", ISS.upper(), OMIT, 42])
def test_an_issuer_not_on_the_allow_list_is_refused_without_fetching_anything(iss: object) -> None:
    checks = harness()

    reason = _refusal(checks, mint(ec_key(), claims(iss=iss)))

    assert reason in (RejectReason.ISSUER_NOT_TRUSTED, RejectReason.CLAIM_MISSING)
    assert checks.server.fetches == []


@pytest.mark.parametrize(
    "jku", ["https://evil.example.org/jwks.json", JKU + "?", JKU.replace("https", "http"), JWKS_URL, 5]
)
def test_a_jku_outside_the_issuers_allow_list_is_refused_without_fetching_it(jku: object) -> None:
    checks = harness(security_settings(issuer(allowed_jku=(JKU,))), documents={JKU: jwks(ec_key())})

    assert _refusal(checks, mint(ec_key(), jku=jku)) is RejectReason.JKU_NOT_ALLOWED
    assert checks.server.fetches == []


def test_a_jku_listed_for_another_issuer_is_refused() -> None:
    settings = security_settings(issuer(), issuer(OTHER_ISS, allowed_jku=(JKU,)))
    checks = harness(settings, documents={JKU: jwks(ec_key())})

    assert _refusal(checks, mint(ec_key(), jku=JKU)) is RejectReason.JKU_NOT_ALLOWED


def test_a_jku_on_the_allow_list_is_where_the_key_is_fetched() -> None:
    checks = harness(security_settings(issuer(allowed_jku=(JKU,))), documents={JKU: jwks(rsa_key())})

    assert checks.verify(mint(rsa_key(), jku=JKU)).iss == ISS
    assert checks.server.fetches == [JKU]


def test_inline_keys_verify_without_any_fetch() -> None:
    checks = harness(security_settings(issuer(jwks_url=None, jwks=jwks(ec_key()))), documents={})

    assert checks.verify(mint(ec_key())).iss == ISS
    assert _refusal(checks, mint(rsa_key())) is RejectReason.UNKNOWN_KID
    assert checks.server.fetches == []


def test_an_unreachable_jwks_refuses_the_token() -> None:
    assert _refusal(harness(documents={}), mint(ec_key())) is RejectReason.UNKNOWN_KID
