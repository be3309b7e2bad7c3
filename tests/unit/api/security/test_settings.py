"""Security settings refuse configurations that would trust the wrong keys, and production refuses unsafe ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from api.security.settings import SecuritySettings, TrustedIssuer, production_problems, refuse_unsafe_in_production
from tests.unit.api.security.tokens import ISS, JWKS_URL, ec_key, jwks

SAFE: dict[str, Any] = {
    "enabled": True,
    "issuers": [{"iss": ISS, "jwks_url": JWKS_URL, "allowed_jku": ["https://ehr.example.org/keys.json"]}],
    "public_base_url": "https://cds.example.org/",
}


def _production(**changes: Any) -> list[str]:
    return production_problems(SecuritySettings.model_validate({**SAFE, **changes}))


def test_safe_production_settings_pass() -> None:
    settings = SecuritySettings.model_validate(SAFE)

    refuse_unsafe_in_production(settings)
    assert settings.public_base_url == "https://cds.example.org"


def test_settings_are_read_from_json_as_an_environment_variable_would_carry_them() -> None:
    settings = SecuritySettings.model_validate_json(json.dumps(SAFE))

    assert settings.issuer(ISS) == TrustedIssuer(
        iss=ISS, jwks_url=JWKS_URL, allowed_jku=("https://ehr.example.org/keys.json",)
    )
    assert settings.issuer("https://unknown.example") is None


def test_production_refuses_disabled_authentication() -> None:
    with pytest.raises(ValueError, match="must be enabled"):
        refuse_unsafe_in_production(SecuritySettings())


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"enabled": False}, "must be enabled"),
        ({"issuers": []}, "at least one trusted issuer"),
        ({"allow_spec_test_key": True}, "example key"),
        ({"public_base_url": ""}, "public_base_url"),
        ({"public_base_url": "http://cds.example.org"}, "public_base_url"),
        ({"issuers": [{"iss": ISS, "jwks_url": "http://ehr.example.org/jwks"}]}, "non-https"),
        ({"issuers": [{"iss": ISS, "allowed_jku": ["http://ehr.example.org/jwks"]}]}, "non-https"),
    ],
)
def test_production_refuses_each_unsafe_value(changes: dict[str, Any], problem: str) -> None:
    assert any(problem in text for text in _production(**changes))


def test_production_refuses_an_issuer_configured_with_the_spec_test_key(shared_data: Path) -> None:
    spec_jwks = json.loads((shared_data / "cds-hooks-examples" / "spec2.0.1_jwks-public.json").read_text())
    spec_issuer = {"iss": "https://fhir-ehr.example.com/", "jwks": spec_jwks}

    problems = _production(issuers=[spec_issuer])

    assert problems == ["issuer 'https://fhir-ehr.example.com/' is configured with the specification's example key"]


def test_an_issuer_with_a_freshly_made_key_is_fine_for_production() -> None:
    assert _production(issuers=[{"iss": ISS, "jwks": jwks(ec_key())}]) == []


@pytest.mark.parametrize(
    "issuer",
    [
        {"iss": "*", "jwks_url": JWKS_URL},
        {"iss": "https://*.example.org", "jwks_url": JWKS_URL},
        {"iss": ""},
        {"iss": ISS},
        {"iss": ISS, "jwks_url": "ehr.example.org/jwks"},
        {"iss": ISS, "jwks_url": "https://user:pw@ehr.example.org/jwks"},
        {"iss": ISS, "allowed_jku": ["file:///etc/jwks.json"]},
        {"iss": ISS, "jwks_url": JWKS_URL, "jwks": {"keys": [{"kty": "EC"}]}},
        {"iss": ISS, "jwks": {"keys": []}},
        {"iss": ISS, "jwks": {"keys": [ec_key().private.as_dict(private=True)]}},
        {"iss": ISS, "jwks_url": JWKS_URL, "audience": "anything"},
    ],
)
def test_an_issuer_that_could_trust_the_wrong_keys_is_refused(issuer: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrustedIssuer.model_validate(issuer)


def test_an_issuer_may_be_listed_only_once() -> None:
    with pytest.raises(ValidationError, match="once"):
        SecuritySettings.model_validate({**SAFE, "issuers": SAFE["issuers"] * 2})


@pytest.mark.parametrize(
    "changes",
    [{"clock_skew_seconds": 301}, {"max_token_lifetime_seconds": 0}, {"public_base_url": "https://cds.example.org?a"}],
)
def test_out_of_range_values_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SecuritySettings.model_validate({**SAFE, **changes})


def test_the_defaults_follow_the_specification() -> None:
    defaults = SecuritySettings()

    assert (defaults.enabled, defaults.clock_skew_seconds, defaults.max_token_lifetime_seconds) == (False, 60, 300)
    assert not defaults.allow_spec_test_key
