"""Staff tokens for tests: a hospital identity provider's key, the settings that trust it, and tokens with roles.

How to configure an app whose admin endpoints check staff tokens (EHR security must be on: staff authentication
follows it):

    settings = Settings(
        environment="test",
        database_url=...,
        security=SecuritySettings(enabled=True, issuers=(...the EHR issuers your test needs...,)),
        staff_auth=staff_auth_settings(),
    )
    client = TestClient(create_app_from_container(build_container(settings)))
    client.post("/policies/validate", json=..., headers=staff_headers(Role.INFORMATICIST))

With `security=SecuritySettings(enabled=False)` (development) no token is checked: send `dev_headers(Role...)`.
`StaffUser.pseudonym` of a token's subject is `expected_pseudonym(salt, sub)`.
"""

from __future__ import annotations

import time
from typing import Any

from api.security.settings import TrustedIssuer
from api.security.staff import Role, staff_pseudonym
from api.security.staff_settings import StaffAuthSettings
from tests.unit.api.security.tokens import OMIT, SigningKey, ec_key, mint

STAFF_ISSUER = "https://idp.hospital.example.org/realms/staff"
STAFF_AUDIENCE = "cds-control-plane"
DEFAULT_SUB = "staff-user-42"


def staff_key() -> SigningKey:
    """The identity provider's signing key (ES384), distinct from every EHR key the tests use."""
    return ec_key("staff-idp-1")


def staff_auth_settings(**fields: Any) -> StaffAuthSettings:
    """Trusts STAFF_ISSUER with staff_key() given inline (no JWKS server needed) for STAFF_AUDIENCE."""
    issuer = TrustedIssuer(iss=STAFF_ISSUER, jwks={"keys": [staff_key().public_jwk()]})
    fields.setdefault("issuers", (issuer,))
    fields.setdefault("audience", STAFF_AUDIENCE)
    return StaffAuthSettings(**fields)


def staff_claims(*roles: Role | str, sub: str = DEFAULT_SUB, **overrides: Any) -> dict[str, Any]:
    """A valid payload for now, valid ten minutes; a value of OMIT removes a claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": STAFF_ISSUER,
        "aud": STAFF_AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "roles": [str(role) for role in roles],
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not OMIT}


def staff_token(*roles: Role | str, sub: str = DEFAULT_SUB, key: SigningKey | None = None, **overrides: Any) -> str:
    return mint(key or staff_key(), staff_claims(*roles, sub=sub, **overrides))


def staff_headers(*roles: Role | str, sub: str = DEFAULT_SUB, **overrides: Any) -> dict[str, str]:
    """`Authorization: Bearer` with a staff token holding `roles`."""
    return {"Authorization": f"Bearer {staff_token(*roles, sub=sub, **overrides)}"}


def dev_headers(*roles: Role | str, user: str = "dev-user") -> dict[str, str]:
    """The development stand-in for a token, honoured only while EHR security is disabled."""
    return {"X-Staff-User": user, "X-Staff-Role": ",".join(str(role) for role in roles)}


def expected_pseudonym(salt: str, sub: str = DEFAULT_SUB) -> str:
    return staff_pseudonym(salt, STAFF_ISSUER, sub)
