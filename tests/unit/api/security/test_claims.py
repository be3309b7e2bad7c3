"""The claims of a correctly signed token: it must be for this endpoint, current, short-lived and used once."""

from __future__ import annotations

from typing import Any

import pytest

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.replay import MemoryReplayGuard
from tests.unit.api.security.tokens import (
    AUDIENCE,
    NOW,
    OMIT,
    Harness,
    claims,
    ec_key,
    harness,
    issuer,
    mint,
    security_settings,
)


def _refusal(token: str, checks: Harness | None = None, audience: str = AUDIENCE) -> RejectReason:
    with pytest.raises(EhrAuthenticationError) as refused:
        (checks or harness()).verify(token, audience=audience)
    return refused.value.reason


def _token(**overrides: Any) -> str:
    return mint(ec_key(), claims(**overrides))


@pytest.mark.parametrize(
    "aud",
    [
        "https://cds.example.org/cds-services/other-service",
        "https://cds.example.org/cds-services/sepsis-news2/",
        "https://cds.example.org/cds-services",
        "https://cds.example.net/cds-services/sepsis-news2",
        "https://cds.example.org:8443/cds-services/sepsis-news2",
        "http://cds.example.org/cds-services/sepsis-news2",
        "https://cds.example.org/cds-services/sepsis-news2?x=1",
        "https://cds.example.org/cds-services/sepsis-news2/feedback",
        "https://cds.example.org/CDS-SERVICES/sepsis-news2",
        ["https://cds.example.org/cds-services/other-service"],
        [],
        OMIT,
        17,
    ],
)
def test_a_token_for_another_endpoint_is_refused(aud: object) -> None:
    assert _refusal(_token(aud=aud)) is RejectReason.AUDIENCE_MISMATCH


@pytest.mark.parametrize(
    "aud",
    [
        AUDIENCE,
        [AUDIENCE],
        ["https://cds.example.org/cds-services/other-service", AUDIENCE],
        "https://CDS.Example.org:443/cds-services/sepsis-news2",
        "HTTPS://cds.example.org/cds-services/sepsis-news2",
    ],
)
def test_a_token_naming_this_endpoint_is_accepted_in_any_equivalent_spelling(aud: object) -> None:
    assert harness().verify(_token(aud=aud)).sub == "ehr-client-7"


def test_the_feedback_endpoint_needs_a_token_for_the_feedback_url() -> None:
    feedback_url = AUDIENCE + "/feedback"

    assert harness().verify(_token(aud=feedback_url), audience=feedback_url).sub == "ehr-client-7"
    assert _refusal(_token(), audience=feedback_url) is RejectReason.AUDIENCE_MISMATCH


def test_an_expired_token_is_refused() -> None:
    assert _refusal(_token(iat=NOW - 400, exp=NOW - 100)) is RejectReason.EXPIRED


def test_a_token_expired_within_the_clock_skew_is_still_accepted() -> None:
    assert harness().verify(_token(iat=NOW - 290, exp=NOW - 30)).sub == "ehr-client-7"


def test_a_token_expired_exactly_at_the_skew_boundary_is_refused() -> None:
    assert _refusal(_token(iat=NOW - 300, exp=NOW - 60)) is RejectReason.EXPIRED


def test_a_token_issued_in_the_future_beyond_the_skew_is_refused() -> None:
    assert _refusal(_token(iat=NOW + 61, exp=NOW + 300)) is RejectReason.ISSUED_IN_FUTURE


def test_a_token_issued_slightly_in_the_future_within_the_skew_is_accepted() -> None:
    assert harness().verify(_token(iat=NOW + 30, exp=NOW + 300)).sub == "ehr-client-7"


def test_a_token_not_yet_valid_is_refused() -> None:
    assert _refusal(_token(nbf=NOW + 120)) is RejectReason.NOT_YET_VALID


def test_a_token_living_longer_than_five_minutes_is_refused() -> None:
    assert _refusal(_token(iat=NOW, exp=NOW + 301)) is RejectReason.LIFETIME_TOO_LONG


def test_the_lifetime_bound_is_configurable() -> None:
    checks = harness(security_settings(max_token_lifetime_seconds=60))

    assert _refusal(_token(iat=NOW, exp=NOW + 120), checks) is RejectReason.LIFETIME_TOO_LONG
    assert checks.verify(_token(iat=NOW, exp=NOW + 60)).sub == "ehr-client-7"


def test_a_token_expiring_before_it_was_issued_is_refused() -> None:
    assert _refusal(_token(iat=NOW + 10, exp=NOW + 5)) is RejectReason.CLAIM_INVALID


@pytest.mark.parametrize("claim", ["exp", "iat", "jti"])
def test_a_token_missing_a_required_claim_is_refused(claim: str) -> None:
    assert _refusal(_token(**{claim: OMIT})) is RejectReason.CLAIM_MISSING


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", "1800000300"),
        ("exp", True),
        ("iat", None),
        ("iat", [NOW]),
        ("nbf", "soon"),
        ("jti", ""),
        ("jti", 12345),
        ("jti", "j" * 257),
        ("sub", 7),
        ("sub", "s" * 129),
        ("tenant", {"id": "t"}),
    ],
)
def test_a_token_with_a_claim_of_the_wrong_type_is_refused(claim: str, value: object) -> None:
    assert _refusal(_token(**{claim: value})) is RejectReason.CLAIM_INVALID


def test_a_replayed_token_is_refused() -> None:
    checks = harness()
    token = _token()
    checks.verify(token)

    assert _refusal(token, checks) is RejectReason.REPLAYED


def test_a_new_token_reusing_a_jti_is_refused_while_the_first_lives() -> None:
    checks = harness()
    checks.verify(_token(jti="once"))

    assert _refusal(_token(jti="once", iat=NOW + 1, exp=NOW + 200), checks) is RejectReason.REPLAYED


def test_a_jti_may_come_again_once_its_first_token_has_expired() -> None:
    checks = harness()
    checks.verify(_token(jti="recycled", exp=NOW + 60))
    checks.clock.now = NOW + 121  # past the first token's expiry and the clock skew

    later = checks.clock.now
    assert checks.verify(_token(jti="recycled", iat=later, exp=later + 60)).jti == "recycled"


def test_the_same_jti_from_two_issuers_are_two_different_tokens() -> None:
    guard = MemoryReplayGuard()
    other = "https://other-ehr.example.net"
    settings = security_settings(issuer(), issuer(other, jwks_url=None, jwks={"keys": [ec_key().public_jwk()]}))
    checks = harness(settings, replay_guard=guard)

    checks.verify(_token(jti="shared"))
    assert checks.verify(_token(jti="shared", iss=other)).iss == other


def test_a_refused_token_does_not_use_up_its_jti() -> None:
    checks = harness()
    _refusal(_token(jti="kept", aud="https://elsewhere.example/cds-services/x"), checks)

    assert checks.verify(_token(jti="kept")).jti == "kept"


def test_a_subject_outside_the_issuers_allow_list_is_refused() -> None:
    checks = harness(security_settings(issuer(allowed_sub=("ehr-client-7",))))

    assert _refusal(_token(sub="someone-else"), checks) is RejectReason.SUBJECT_NOT_ALLOWED
    assert _refusal(_token(sub=OMIT), checks) is RejectReason.SUBJECT_NOT_ALLOWED
    assert checks.verify(_token()).sub == "ehr-client-7"


def test_without_sub_and_tenant_the_issuer_is_the_actor() -> None:
    client = harness().verify(_token(sub=OMIT, tenant=OMIT))

    assert (client.sub, client.tenant, client.actor) == (None, None, "https://ehr.example.org")
