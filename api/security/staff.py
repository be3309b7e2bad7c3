"""Staff users (clinicians, informaticists, operators) and the role each admin endpoint needs.

Use `InformaticistDep`, `ClinicianDep` or `OperatorDep` as a route parameter, or `Depends(require_role(...))`:
- no token, or one we do not accept: 401 with the same body and `WWW-Authenticate: Bearer` as the EHR endpoints;
- a valid token without the role: 403 `{"error": {"status": 403, "message": "this needs the role ..."}}`.

Who may do what: an informaticist may also do what clinicians and operators do (they own the policies, review
feedback and may stop a canary); a clinician or an operator may only do what their own role allows. Changing
policies, silences and stages needs INFORMATICIST, always.

In production staff tokens are JWTs from the hospital identity provider (`CDS_STAFF_AUTH`, see
api/security/staff_settings.py); `StaffUser.pseudonym` is an HMAC of issuer and subject keyed with
`CDS_PSEUDONYM_SALT`, so the audit trail names a staff member without holding the identity provider's id.
When EHR security is disabled (development only; production refuses that), no token is checked: the headers
`X-Staff-User: NAME` and `X-Staff-Role: informaticist,clinician` say who is calling. With security enabled those
headers are ignored (and their use logged).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from prometheus_client import Counter

from api.errors import HookRequestError
from api.security.dependency import bearer_token
from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.jwks_http import JwksFetcher
from api.security.staff_settings import Role, StaffAuthSettings
from api.security.staff_verifier import StaffTokenVerifier
from cdsctl.logs import get_logger

if TYPE_CHECKING:
    from cdsctl.settings import Settings

__all__ = [
    "ClinicianDep",
    "InformaticistDep",
    "OperatorDep",
    "Role",
    "StaffAuthenticator",
    "StaffForbiddenError",
    "StaffUser",
    "require_role",
    "staff_authenticator",
]

log = get_logger(__name__)

STAFF_AUTH_REJECTED = Counter(
    "cds_staff_auth_rejected_total",
    "Admin API calls refused with 401 (no or unaccepted staff token) or 403 (role missing), by reason.",
    ["reason"],
)

APP_STATE_KEY = "staff_authenticator"
DEV_USER_HEADER = "X-Staff-User"
DEV_ROLE_HEADER = "X-Staff-Role"
# Roles that include others: an informaticist may act as a clinician or an operator too.
_IMPLIED: dict[Role, frozenset[Role]] = {Role.INFORMATICIST: frozenset({Role.CLINICIAN, Role.OPERATOR})}


@dataclass(frozen=True)
class StaffUser:
    """A staff member as the audit trail names them: a keyed hash, never the identity provider's subject."""

    pseudonym: str
    roles: frozenset[Role]

    def has_any(self, roles: tuple[Role, ...]) -> bool:
        held = self.roles.union(*(_IMPLIED.get(role, frozenset()) for role in self.roles))
        return any(role in held for role in roles)


class StaffForbiddenError(HookRequestError):
    """A staff user known to us but without the role an endpoint needs: a 403 in the project's error shape."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        names = " or ".join(role.value for role in roles)
        super().__init__(403, f"this needs the role {names}")


def staff_pseudonym(salt: str, iss: str, sub: str) -> str:
    """The pseudonym of a staff member: HMAC-SHA256 of issuer and subject, keyed with the deployment's secret salt,
    so nobody without the salt can tell from the audit trail who it names, or test a guess."""
    digest = hmac.new(salt.encode("utf-8"), f"staff\n{iss}\n{sub}".encode(), hashlib.sha256).hexdigest()
    return f"staff:{digest[:32]}"


class StaffAuthenticator:
    """Turns a request into the staff user who sent it. Refusals are logged and counted by reason only."""

    def __init__(self, settings: StaffAuthSettings, *, enabled: bool, salt: str, verifier: StaffTokenVerifier | None):
        if enabled and verifier is None:
            raise ValueError("staff authentication is enabled but no verifier was given")
        self._settings = settings
        self._enabled = enabled
        self._salt = salt
        self._verifier = verifier

    @classmethod
    def from_settings(cls, settings: Settings, *, fetcher: JwksFetcher | None = None) -> StaffAuthenticator:
        staff, enabled = settings.staff_auth, settings.resolved_security.enabled
        # Settings already refuse disabled security in production; this keeps the development headers out of it
        # even if that check were ever loosened.
        if not enabled and settings.environment == "production":
            raise ValueError("staff authentication cannot be disabled in production")
        verifier = StaffTokenVerifier(staff, fetcher=fetcher) if enabled else None
        return cls(staff, enabled=enabled, salt=settings.pseudonym_salt, verifier=verifier)

    def authenticate(self, request: Request) -> StaffUser:
        if self._verifier is None:
            return self._development_user(request)
        try:
            if DEV_USER_HEADER in request.headers or DEV_ROLE_HEADER in request.headers:
                log.warning("staff_auth.dev_headers_ignored", path=request.url.path)
            verified = self._verifier.verify(bearer_token(request.headers.get("authorization")))
        except EhrAuthenticationError as exc:
            STAFF_AUTH_REJECTED.labels(exc.reason.value).inc()
            log.warning("staff_auth.rejected", reason=exc.reason.value, issuer=exc.issuer, path=request.url.path)
            raise
        return StaffUser(pseudonym=staff_pseudonym(self._salt, verified.iss, verified.sub), roles=verified.roles)

    def _development_user(self, request: Request) -> StaffUser:
        name = request.headers.get(DEV_USER_HEADER, "").strip()
        if not name:
            raise EhrAuthenticationError(RejectReason.MISSING_CREDENTIALS)
        roles = frozenset(
            role
            for part in request.headers.get(DEV_ROLE_HEADER, "").split(",")
            if (role := self._settings.role_for(part.strip())) is not None
        )
        return StaffUser(pseudonym=staff_pseudonym(self._salt, "development", name), roles=roles)


_BUILD_LOCK = threading.Lock()


def staff_authenticator(request: Request) -> StaffAuthenticator:
    """The app's staff authenticator: the one put on `app.state` (tests do), else built once from its settings."""
    state = request.app.state
    found: StaffAuthenticator | None = getattr(state, APP_STATE_KEY, None)
    if found is None:
        with _BUILD_LOCK:
            found = getattr(state, APP_STATE_KEY, None)
            if found is None:
                found = StaffAuthenticator.from_settings(state.settings)
                setattr(state, APP_STATE_KEY, found)
    return found


def require_role(*roles: Role) -> Callable[[Request], StaffUser]:
    """A dependency admitting staff users holding any of `roles` (or a role implying one): `Depends(require_role(
    Role.INFORMATICIST))`. A plain `def`, so a JWKS fetch runs in FastAPI's thread pool, off the event loop."""
    if not roles:
        raise ValueError("require_role needs at least one role")

    def staff_user_with_role(request: Request) -> StaffUser:
        user = staff_authenticator(request).authenticate(request)
        if not user.has_any(roles):
            STAFF_AUTH_REJECTED.labels("role_missing").inc()
            log.warning("staff_auth.forbidden", needs=[r.value for r in roles], path=request.url.path)
            raise StaffForbiddenError(roles)
        return user

    return staff_user_with_role


InformaticistDep = Annotated[StaffUser, Depends(require_role(Role.INFORMATICIST))]
ClinicianDep = Annotated[StaffUser, Depends(require_role(Role.CLINICIAN))]
OperatorDep = Annotated[StaffUser, Depends(require_role(Role.OPERATOR))]
