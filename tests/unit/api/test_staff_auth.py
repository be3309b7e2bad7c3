"""Staff authentication as an admin endpoint meets it: 401 without an accepted staff token, 403 without the role."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.errors import HookRequestError, hook_request_error_handler
from api.security import SecuritySettings, TrustedIssuer
from api.security.errors import EhrAuthenticationError, ehr_authentication_error_handler
from api.security.staff import (
    ClinicianDep,
    InformaticistDep,
    OperatorDep,
    Role,
    StaffAuthenticator,
    StaffUser,
    staff_pseudonym,
)
from api.security.staff_settings import StaffAuthSettings
from api.security.staff_verifier import StaffTokenVerifier
from cdsctl.settings import Environment, Settings
from tests.staff_tokens import (
    DEFAULT_SUB,
    STAFF_ISSUER,
    dev_headers,
    expected_pseudonym,
    staff_auth_settings,
    staff_headers,
    staff_key,
    staff_token,
)
from tests.unit.api.security.tokens import OMIT, FakeJwksServer, claims, ec_key, jwks, mint

SALT = "staff-test-salt"
EXPECTED_401 = {"error": {"status": 401, "message": "authentication required"}}
EHR_ISSUER = "https://ehr.example.org"


def _client(*, security: bool = True, **staff: Any) -> TestClient:
    ehr_issuer = TrustedIssuer(iss=EHR_ISSUER, jwks={"keys": [ec_key().public_jwk()]})
    app = FastAPI()
    app.state.settings = Settings(
        environment=Environment.TEST,
        pseudonym_salt=SALT,
        security=SecuritySettings(enabled=security, issuers=(ehr_issuer,)),
        staff_auth=staff_auth_settings(**staff),
    )
    app.add_exception_handler(EhrAuthenticationError, ehr_authentication_error_handler)
    app.add_exception_handler(HookRequestError, hook_request_error_handler)

    def described(user: StaffUser) -> dict[str, Any]:
        return {"pseudonym": user.pseudonym, "roles": sorted(user.roles)}

    @app.post("/informaticist")
    def informaticist_only(user: InformaticistDep) -> dict[str, Any]:
        return described(user)

    @app.post("/clinician")
    def clinician_only(user: ClinicianDep) -> dict[str, Any]:
        return described(user)

    @app.post("/operator")
    def operator_only(user: OperatorDep) -> dict[str, Any]:
        return described(user)

    return TestClient(app, raise_server_exceptions=False)


def test_a_call_without_a_token_gets_the_uniform_401_with_a_bearer_challenge() -> None:
    response = _client().post("/informaticist")

    assert response.status_code == 401
    assert response.json() == EXPECTED_401
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_informaticist_token_is_accepted_and_names_the_user_by_pseudonym_only() -> None:
    response = _client().post("/informaticist", headers=staff_headers(Role.INFORMATICIST))

    assert response.status_code == 200
    assert response.json() == {"pseudonym": expected_pseudonym(SALT), "roles": ["informaticist"]}
    assert DEFAULT_SUB not in response.text


def test_a_valid_token_without_the_role_gets_403_naming_the_role_needed() -> None:
    response = _client().post("/informaticist", headers=staff_headers(Role.CLINICIAN))

    assert response.status_code == 403
    assert response.json() == {"error": {"status": 403, "message": "this needs the role informaticist"}}


def test_a_token_with_no_roles_claim_is_authenticated_but_may_do_nothing() -> None:
    response = _client().post("/clinician", headers=staff_headers(roles=OMIT))

    assert response.status_code == 403


def test_an_informaticist_may_act_as_clinician_and_operator_but_not_the_other_way_round() -> None:
    client = _client()
    informaticist = staff_headers(Role.INFORMATICIST)

    statuses = [
        client.post("/clinician", headers=informaticist).status_code,
        client.post("/operator", headers=informaticist).status_code,
        client.post("/informaticist", headers=staff_headers(Role.CLINICIAN, Role.OPERATOR)).status_code,
        client.post("/operator", headers=staff_headers(Role.CLINICIAN)).status_code,
        client.post("/clinician", headers=staff_headers(Role.OPERATOR)).status_code,
    ]

    assert statuses == [200, 200, 403, 403, 403]


def test_an_ehr_token_is_refused_on_staff_endpoints() -> None:
    ehr_token = mint(ec_key(), claims(iss=EHR_ISSUER, aud="http://testserver/informaticist", roles=["informaticist"]))

    response = _client().post("/informaticist", headers={"Authorization": f"Bearer {ehr_token}"})

    assert response.status_code == 401
    assert response.json() == EXPECTED_401


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "some-other-client"},
        {"exp": 1_000_000_000, "iat": 999_999_000},
        {"sub": OMIT},
        {"sub": ""},
        {"roles": "informaticist"},
        {"iss": "https://idp.elsewhere.example.org"},
    ],
    ids=["wrong audience", "expired", "no subject", "empty subject", "roles not a list", "untrusted issuer"],
)
def test_a_staff_token_failing_any_check_gets_401(overrides: dict[str, Any]) -> None:
    token = staff_token(Role.INFORMATICIST, **overrides)

    response = _client().post("/informaticist", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json() == EXPECTED_401


def test_a_token_signed_by_another_key_under_the_staff_issuer_gets_401() -> None:
    token = staff_token(Role.INFORMATICIST, key=ec_key("staff-idp-1-impostor"))

    response = _client().post("/informaticist", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


def test_a_token_living_longer_than_allowed_gets_401() -> None:
    token = staff_token(Role.INFORMATICIST, exp=int(time.time()) + 7200)

    response = _client(max_token_lifetime_seconds=3600).post(
        "/informaticist", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 401


def test_development_headers_are_refused_when_security_is_enabled() -> None:
    response = _client(security=True).post("/informaticist", headers=dev_headers(Role.INFORMATICIST))

    assert response.status_code == 401
    assert response.json() == EXPECTED_401


def test_development_headers_name_the_user_and_roles_when_security_is_disabled() -> None:
    client = _client(security=False)

    allowed = client.post("/informaticist", headers=dev_headers(Role.INFORMATICIST, user="ada"))
    forbidden = client.post("/informaticist", headers=dev_headers(Role.CLINICIAN, user="ada"))
    anonymous = client.post("/informaticist")

    assert allowed.status_code == 200
    assert allowed.json()["pseudonym"] == staff_pseudonym(SALT, "development", "ada")
    assert "ada" not in allowed.json()["pseudonym"]
    assert (forbidden.status_code, anonymous.status_code) == (403, 401)


def test_roles_are_read_from_the_configured_claim_path_and_mapped_from_the_providers_names() -> None:
    client = _client(roles_claim="realm_access.roles", role_names={"cds-admins": "informaticist"})
    token = staff_token(roles=OMIT, realm_access={"roles": ["cds-admins", "offline_access"]})

    response = client.post("/informaticist", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["roles"] == ["informaticist"]


def test_the_pseudonym_depends_on_the_secret_salt_and_the_issuer() -> None:
    base = staff_pseudonym(SALT, STAFF_ISSUER, DEFAULT_SUB)

    assert base == staff_pseudonym(SALT, STAFF_ISSUER, DEFAULT_SUB)
    assert base != staff_pseudonym("another-salt", STAFF_ISSUER, DEFAULT_SUB)
    assert base != staff_pseudonym(SALT, "https://idp.elsewhere.example.org", DEFAULT_SUB)
    assert DEFAULT_SUB not in base


def test_production_refuses_a_staff_identity_provider_with_keys_over_plain_http() -> None:
    staff = StaffAuthSettings(issuers=(TrustedIssuer(iss=STAFF_ISSUER, jwks_url="http://idp.example.org/jwks"),))

    with pytest.raises(ValidationError, match="staff issuer"):
        Settings(
            environment=Environment.PRODUCTION,
            pseudonym_salt="a-real-secret",
            security=SecuritySettings(
                enabled=True,
                issuers=(TrustedIssuer(iss=EHR_ISSUER, jwks_url="https://ehr.example.org/jwks"),),
                public_base_url="https://cds.example.org",
            ),
            staff_auth=staff,
        )


def test_development_headers_can_never_be_honoured_in_production() -> None:
    # Settings refuse disabled security in production; built around that check, the authenticator still refuses.
    unchecked = Settings.model_construct(
        environment=Environment.PRODUCTION,
        pseudonym_salt=SALT,
        security=SecuritySettings(enabled=False),
        staff_auth=StaffAuthSettings(),
    )

    with pytest.raises(ValueError, match="production"):
        StaffAuthenticator.from_settings(unchecked)


def test_keys_are_fetched_from_the_identity_providers_jwks_url_and_cached() -> None:
    url = "https://idp.hospital.example.org/realms/staff/certs"
    server = FakeJwksServer({url: jwks(staff_key())})
    settings = staff_auth_settings(issuers=(TrustedIssuer(iss=STAFF_ISSUER, jwks_url=url),))
    verifier = StaffTokenVerifier(settings, fetcher=server)

    first = verifier.verify(staff_token(Role.OPERATOR))
    second = verifier.verify(staff_token(Role.CLINICIAN, sub="someone-else"))

    assert (first.roles, second.roles) == (frozenset({Role.OPERATOR}), frozenset({Role.CLINICIAN}))
    assert server.fetches == [url]
