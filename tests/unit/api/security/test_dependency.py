"""The FastAPI dependency as an EHR meets it: one 401 for every failure, the audience taken from the URL it called."""

from __future__ import annotations

from typing import Any, cast

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from api.security.dependency import APP_STATE_KEY, EhrAuthenticator, EhrClientDep, bearer_token, require_ehr_client
from api.security.errors import EhrAuthenticationError, RejectReason, ehr_authentication_error_handler
from api.security.settings import SecuritySettings
from api.security.verifier import AuthenticatedClient
from tests.unit.api.security.tokens import (
    AUDIENCE,
    MALFORMED_TOKENS,
    NOW,
    OMIT,
    claims,
    ec_key,
    harness,
    mint,
    rsa_key,
    security_settings,
)

PUBLIC = "https://cds.example.org"
EXPECTED_401 = {"error": {"status": 401, "message": "authentication required"}}


def _app(settings: SecuritySettings, *, handler: bool = True, root_path: str = "") -> TestClient:
    checks = harness(settings)
    authenticator = EhrAuthenticator(settings, checks.verifier if settings.enabled else None)
    app = FastAPI()
    setattr(app.state, APP_STATE_KEY, authenticator)
    if handler:
        app.add_exception_handler(EhrAuthenticationError, ehr_authentication_error_handler)

    @app.post("/cds-services/{service_id}")
    def call_hook(service_id: str, client: EhrClientDep) -> dict[str, Any]:
        return {"service": service_id, "actor": client.actor, "iss": client.iss, "tenant": client.tenant}

    @app.post("/cds-services/{service_id}/feedback")
    def feedback(
        service_id: str,
        client: AuthenticatedClient = Depends(require_ehr_client(authenticator)),  # noqa: B008
    ) -> dict[str, Any]:
        return {"service": service_id, "actor": client.actor}

    # raise_server_exceptions off: a bug must show as the 500 an EHR would get, not as a test-side traceback.
    return TestClient(app, raise_server_exceptions=False, root_path=root_path)


def _call(client: TestClient, token: str | None, path: str = "/cds-services/sepsis-news2", **headers: str) -> Any:
    sent: dict[str, str | bytes] = dict(headers)
    if token is not None:
        # As bytes: a hostile client can put any octet in a header, not only what an HTTP library would send.
        sent["Authorization"] = f"Bearer {token}".encode("latin-1")
    return client.post(path, json={}, headers=cast(Any, sent))


def _settings(**fields: Any) -> SecuritySettings:
    return security_settings(public_base_url=PUBLIC, **fields)


def test_a_call_with_a_valid_token_reaches_the_route_as_the_authenticated_client() -> None:
    response = _call(_app(_settings()), mint(ec_key()))

    assert response.status_code == 200
    assert response.json() == {
        "service": "sepsis-news2",
        "actor": "ehr-client-7",
        "iss": "https://ehr.example.org",
        "tenant": claims()["tenant"],
    }


def _failing_requests(replayed: str) -> dict[str, tuple[str | None, dict[str, str]]]:
    cases: dict[str, tuple[str | None, dict[str, str]]] = {
        "no authorization header": (None, {}),
        "basic scheme": (None, {"Authorization": "Basic ZWhyOnNlY3JldA=="}),
        "bearer without token": (None, {"Authorization": "Bearer "}),
        "bearer with two tokens": (None, {"Authorization": f"Bearer {mint(ec_key())} {mint(ec_key())}"}),
        "expired": (mint(ec_key(), claims(iat=NOW - 600, exp=NOW - 300)), {}),
        "wrong audience": (mint(ec_key(), claims(aud=AUDIENCE + "/")), {}),
        "untrusted issuer": (mint(ec_key(), claims(iss="https://evil.example")), {}),
        "no typ": (mint(ec_key(), typ=OMIT), {}),
        "RS256": (mint(rsa_key(), alg="RS256"), {}),
        "unknown kid": (mint(ec_key("nobody")), {}),
        "bad signature": (mint(ec_key())[:-4] + "AAAA", {}),
        "replayed": (replayed, {}),
    }
    cases.update({f"malformed: {name}": (token, {}) for name, token in MALFORMED_TOKENS.items()})
    return cases


def test_every_failure_gets_the_same_401_body_and_challenge() -> None:
    client = _app(_settings())
    replayed = mint(ec_key(), claims(jti="replayed"))
    assert _call(client, replayed).status_code == 200

    answers = {}
    for name, (token, headers) in _failing_requests(replayed).items():
        response = _call(client, token, **headers)
        answers[name] = (response.status_code, response.json(), response.headers.get("www-authenticate"))

    assert len(answers) > 25
    assert {name: answer for name, answer in answers.items() if answer != (401, EXPECTED_401, "Bearer")} == {}


def test_a_401_keeps_its_challenge_even_when_the_app_registers_no_handler() -> None:
    response = _call(_app(_settings(), handler=False), "garbage")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "garbage" not in response.text


def test_behind_a_proxy_the_audience_is_the_public_url_not_the_host_header() -> None:
    client = _app(_settings())

    spoofed = _call(
        client,
        mint(ec_key(), claims(aud="https://attacker.example/cds-services/sepsis-news2")),
        Host="attacker.example",
    )
    assert spoofed.status_code == 401
    assert _call(client, mint(ec_key()), Host="internal-pod:8080").status_code == 200


def test_a_public_url_with_a_path_prefix_is_the_audience_of_an_app_mounted_under_it() -> None:
    client = _app(security_settings(public_base_url="https://example.org/cds/"), root_path="/cds")
    audience = "https://example.org/cds/cds-services/sepsis-news2"

    assert _call(client, mint(ec_key(), claims(aud=audience)), "/cds/cds-services/sepsis-news2").status_code == 200
    assert _call(client, mint(ec_key(), claims(aud=audience)), "/cds-services/sepsis-news2").status_code == 200
    assert _call(client, mint(ec_key())).status_code == 401


def test_without_a_public_url_the_audience_is_the_url_as_received() -> None:
    client = _app(security_settings())
    as_received = "http://testserver/cds-services/sepsis-news2"

    assert _call(client, mint(ec_key(), claims(aud=as_received))).status_code == 200
    assert _call(client, mint(ec_key())).status_code == 401


def test_feedback_calls_need_a_token_for_the_feedback_url() -> None:
    client = _app(_settings())
    feedback = "/cds-services/sepsis-news2/feedback"

    assert _call(client, mint(ec_key()), feedback).status_code == 401
    accepted = _call(client, mint(ec_key(), claims(aud=PUBLIC + feedback)), feedback)
    assert accepted.status_code == 200
    assert accepted.json()["actor"] == "ehr-client-7"


def test_with_authentication_disabled_every_caller_is_the_anonymous_client() -> None:
    client = _app(SecuritySettings(enabled=False))

    response = _call(client, None)

    assert response.status_code == 200
    assert response.json()["actor"] == "anonymous"


def test_an_enabled_authenticator_cannot_be_built_without_a_verifier() -> None:
    with pytest.raises(ValueError, match="no verifier"):
        EhrAuthenticator(_settings(), None)


def test_a_refusal_is_logged_and_counted_by_reason_without_the_token() -> None:
    token = mint(ec_key(), claims(iat=NOW - 600, exp=NOW - 300, jti="expired-jti"))
    before = REGISTRY.get_sample_value("cds_ehr_auth_rejected_total", {"reason": "expired"}) or 0.0

    with capture_logs() as logs:
        _call(_app(_settings()), token)

    assert REGISTRY.get_sample_value("cds_ehr_auth_rejected_total", {"reason": "expired"}) == before + 1
    rejected = [entry for entry in logs if entry["event"] == "ehr_auth.rejected"]
    assert rejected == [
        {
            "event": "ehr_auth.rejected",
            "log_level": "warning",
            "reason": "expired",
            "issuer": "https://ehr.example.org",
            "path": "/cds-services/sepsis-news2",
        }
    ]
    assert "expired-jti" not in str(logs) and token not in str(logs)


@pytest.mark.parametrize("header", ["Bearer abc", "bearer abc", "BEARER   abc  "])
def test_the_bearer_scheme_name_is_case_insensitive(header: str) -> None:
    assert bearer_token(header) == "abc"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Token abc", "Bearer a b", "Bearerabc"])
def test_anything_but_one_bearer_token_is_missing_credentials(header: str | None) -> None:
    with pytest.raises(EhrAuthenticationError) as refused:
        bearer_token(header)

    assert refused.value.reason is RejectReason.MISSING_CREDENTIALS
