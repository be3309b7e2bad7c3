"""Settings of staff authentication: the hospital identity provider(s) whose JWTs name staff users and their roles."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.security.settings import TrustedIssuer


class Role(StrEnum):
    """What a staff user may do here. Changing policies, silences and stages needs INFORMATICIST."""

    CLINICIAN = "clinician"
    INFORMATICIST = "informaticist"
    OPERATOR = "operator"


class StaffAuthSettings(BaseModel):
    """How staff tokens are verified. Whether staff authentication is on follows EHR authentication
    (`CDS_SECURITY.enabled`): off only in development, where the `X-Staff-*` headers stand in for a token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The identity provider(s): `iss` and keys (jwks_url, inline jwks or allowed_jku), as for EHR issuers.
    issuers: tuple[TrustedIssuer, ...] = ()
    # The `aud` staff tokens must carry: this service's client id at the identity provider, not a URL.
    audience: str = Field(default="cds-control-plane", min_length=1, max_length=512)
    # Where the roles are in the claims, as a dotted path (Keycloak puts them under "realm_access.roles").
    roles_claim: str = Field(default="roles", min_length=1, max_length=128)
    # The identity provider's role names and the role each grants; our own role names are always understood.
    role_names: dict[str, Role] = Field(default_factory=dict)
    clock_skew_seconds: int = Field(default=60, ge=0, le=300)
    # Staff access tokens are reused for a session, unlike the EHR's single-use tokens, so they may live longer.
    max_token_lifetime_seconds: int = Field(default=3600, ge=1, le=12 * 3600)
    jwks_cache_seconds: int = Field(default=600, ge=1)
    jwks_max_cache_seconds: int = Field(default=3600, ge=1)
    jwks_min_refetch_seconds: int = Field(default=60, ge=1)
    jwks_timeout_seconds: float = Field(default=3.0, gt=0, le=30)

    @field_validator("roles_claim")
    @classmethod
    def _dotted_path(cls, path: str) -> str:
        if any(not part for part in path.split(".")):
            raise ValueError("roles_claim is a dotted path of claim names, e.g. 'roles' or 'realm_access.roles'")
        return path

    @model_validator(mode="after")
    def _issuers_are_distinct(self) -> StaffAuthSettings:
        names = [issuer.iss for issuer in self.issuers]
        if len(names) != len(set(names)):
            raise ValueError("each staff issuer may be configured once")
        if self.jwks_max_cache_seconds < self.jwks_min_refetch_seconds:
            raise ValueError("jwks_max_cache_seconds must not be below jwks_min_refetch_seconds")
        return self

    def issuer(self, iss: str) -> TrustedIssuer | None:
        return next((issuer for issuer in self.issuers if issuer.iss == iss), None)

    def role_for(self, name: str) -> Role | None:
        """The role a name in the roles claim grants, if any (unknown names grant nothing)."""
        if name in self.role_names:
            return self.role_names[name]
        try:
            return Role(name)
        except ValueError:
            return None

    def production_problems(self) -> list[str]:
        """Why these settings are unsafe for production (empty when they are fine)."""
        problems: list[str] = []
        for issuer in self.issuers:
            if issuer.holds_spec_test_key():
                problems.append(f"staff issuer {issuer.iss!r} is configured with the specification's example key")
            insecure = [url for url in issuer.key_urls if not url.startswith("https://")]
            if insecure:
                problems.append(f"staff issuer {issuer.iss!r} has keys at non-https URLs: {insecure}")
        return problems
