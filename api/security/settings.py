"""Settings of EHR authentication: the trusted issuers with their keys, clock tolerances and the public base URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The public key of the CDS Hooks 2.0.1 specification's example JWT. Its private half is published with it, so
# anybody can sign tokens with it: trusted only when a test says so, and never in production.
SPEC_TEST_KEY_X = "46SDH7Znh821wblCBglA61sNE9ZrHYKKt3qRtRTmSXyOI_FIGBLWrWa0GPUkDCEk"
SPEC_TEST_KEY_Y = "XMcRuuoGW7CXjQdy-F5i3FeBE0x9hPLdeFdSoDd3ELmx404tLX0VRRcqzAsPhXcI"

# JWK members that only a private key has; a trust configuration holding one has leaked a signing secret.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def is_spec_test_key(jwk: dict[str, Any]) -> bool:
    """Whether a JWK is the specification's example key (whatever kid it was given)."""
    return jwk.get("kty") == "EC" and jwk.get("x") == SPEC_TEST_KEY_X and jwk.get("y") == SPEC_TEST_KEY_Y


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or parts.username:
        raise ValueError(f"{what} must be an absolute http(s) URL without credentials or fragment: {url!r}")
    return url


class TrustedIssuer(BaseModel):
    """One EHR we accept calls from: its `iss`, where its keys are, and which `jku` URLs it may point us to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iss: str = Field(min_length=1, max_length=512)
    # Exactly as the EHR's JWKS is published; used when a token carries no `jku`.
    jwks_url: str | None = None
    # Keys agreed out of band, as a JWK Set document (public keys only).
    jwks: dict[str, Any] | None = None
    # `jku` header values honoured for this issuer, compared as exact strings.
    allowed_jku: tuple[str, ...] = ()
    # When not empty, the token's `sub` (the EHR's client id) must be one of these.
    allowed_sub: tuple[str, ...] = ()

    @field_validator("iss")
    @classmethod
    def _no_wildcard(cls, iss: str) -> str:
        if "*" in iss:
            raise ValueError("issuers are listed one by one: wildcards are refused")
        return iss

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url_is_absolute(cls, url: str | None) -> str | None:
        return None if url is None else _check_url(url, "jwks_url")

    @field_validator("allowed_jku")
    @classmethod
    def _jku_are_absolute(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_url(url, "allowed_jku entry") for url in urls)

    @field_validator("jwks")
    @classmethod
    def _jwks_holds_public_keys(cls, jwks: dict[str, Any] | None) -> dict[str, Any] | None:
        if jwks is None:
            return None
        keys = jwks.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(key, dict) for key in keys):
            raise ValueError("jwks must be a JWK Set: an object with a non-empty 'keys' array of objects")
        for key in keys:
            if _PRIVATE_MEMBERS & key.keys():
                raise ValueError("jwks must hold public keys only; private key material was configured")
        return jwks

    @model_validator(mode="after")
    def _has_a_key_source(self) -> TrustedIssuer:
        if self.jwks_url is None and self.jwks is None and not self.allowed_jku:
            raise ValueError(f"issuer {self.iss!r} needs jwks_url, jwks or allowed_jku")
        if self.jwks_url is not None and self.jwks is not None:
            raise ValueError(f"issuer {self.iss!r}: give jwks_url or jwks, not both")
        return self

    @property
    def key_urls(self) -> tuple[str, ...]:
        """Every URL keys of this issuer may be fetched from."""
        return ((self.jwks_url,) if self.jwks_url else ()) + self.allowed_jku

    def holds_spec_test_key(self) -> bool:
        return self.jwks is not None and any(is_spec_test_key(key) for key in self.jwks["keys"])


class SecuritySettings(BaseModel):
    """How calls from EHRs are authenticated (HL7 CDS Hooks 2.0.1, "Trusting CDS Clients")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Off only for development: every caller is then the anonymous client. Production refuses it.
    enabled: bool = False
    issuers: tuple[TrustedIssuer, ...] = ()
    clock_skew_seconds: int = Field(default=60, ge=0, le=300)
    # The specification recommends tokens valid for five minutes at most.
    max_token_lifetime_seconds: int = Field(default=300, ge=1, le=3600)
    # The URL EHRs address this service by, up to (not including) `/cds-services`, e.g. "https://cds.example.org".
    # Empty: taken from each request, which is only right when no proxy stands between the EHR and us.
    public_base_url: str = ""
    jwks_cache_seconds: int = Field(default=600, ge=1)
    jwks_max_cache_seconds: int = Field(default=3600, ge=1)
    # At most one fetch of a JWKS URL per this interval, whatever tokens arrive (unknown kids cannot flood it).
    jwks_min_refetch_seconds: int = Field(default=60, ge=1)
    jwks_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # Tests only: lets the specification's published example key verify tokens.
    allow_spec_test_key: bool = False

    @field_validator("public_base_url")
    @classmethod
    def _base_url_is_absolute(cls, url: str) -> str:
        if not url:
            return url
        if urlsplit(url).query:
            raise ValueError("public_base_url must not carry a query")
        return _check_url(url, "public_base_url").rstrip("/")

    @model_validator(mode="after")
    def _issuers_are_distinct(self) -> SecuritySettings:
        names = [issuer.iss for issuer in self.issuers]
        if len(names) != len(set(names)):
            raise ValueError("each issuer may be configured once")
        if self.jwks_max_cache_seconds < self.jwks_min_refetch_seconds:
            raise ValueError("jwks_max_cache_seconds must not be below jwks_min_refetch_seconds")
        return self

    def issuer(self, iss: str) -> TrustedIssuer | None:
        return next((issuer for issuer in self.issuers if issuer.iss == iss), None)


def production_problems(security: SecuritySettings) -> list[str]:
    """Why these settings are unsafe for production (empty when they are fine)."""
    problems: list[str] = []
    if not security.enabled:
        problems.append("EHR authentication must be enabled in production")
    if security.enabled and not security.issuers:
        problems.append("at least one trusted issuer must be configured")
    if security.allow_spec_test_key:
        problems.append("the specification's example key must not be trusted in production")
    if not security.public_base_url.startswith("https://"):
        problems.append("public_base_url must be set to the https URL EHRs call")
    for issuer in security.issuers:
        if issuer.holds_spec_test_key():
            problems.append(f"issuer {issuer.iss!r} is configured with the specification's example key")
        insecure = [url for url in issuer.key_urls if not url.startswith("https://")]
        if insecure:
            problems.append(f"issuer {issuer.iss!r} has keys at non-https URLs: {insecure}")
    return problems


def refuse_unsafe_in_production(security: SecuritySettings) -> None:
    """Raise ValueError, naming every problem, when `security` is not fit for production."""
    problems = production_problems(security)
    if problems:
        raise ValueError("unsafe security settings for production: " + "; ".join(problems))
