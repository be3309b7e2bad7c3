"""The FastAPI side of EHR authentication: bearer token and audience from the request, the verdict as a dependency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.metrics import EHR_AUTH_ACCEPTED, EHR_AUTH_REJECTED
from api.security.replay import ReplayGuard
from api.security.settings import SecuritySettings
from api.security.verifier import ANONYMOUS_CLIENT, AuthenticatedClient, EhrTokenVerifier
from cdsctl.logs import get_logger

log = get_logger(__name__)

APP_STATE_KEY = "ehr_authenticator"


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (the scheme name is case-insensitive, RFC 7235)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise EhrAuthenticationError(RejectReason.MISSING_CREDENTIALS)
    return token


def audience_for(request: Request, public_base_url: str) -> str:
    """The URL the EHR called, which its token's `aud` must name: the configured public base URL plus the path
    within the app when set (behind a proxy the request's own host and scheme are the proxy's), else the URL as
    this server received it."""
    path = request.url.path
    if public_base_url:
        root_path = request.scope.get("root_path", "").rstrip("/")
        # Servers differ on whether the scope's path already carries the mount prefix; strip it whole segments only
        # ("/cds" is not a prefix of "/cds-services").
        if root_path and path.startswith(root_path + "/"):
            path = path[len(root_path) :]
        return public_base_url + path
    return f"{request.url.scheme}://{request.url.netloc}{path}"


class EhrAuthenticator:
    """Turns a request into the EHR client that sent it. Every refusal is logged and counted here, by reason only:
    no token, claim or header value is ever written."""

    def __init__(self, settings: SecuritySettings, verifier: EhrTokenVerifier | None) -> None:
        if settings.enabled and verifier is None:
            raise ValueError("EHR authentication is enabled but no verifier was given")
        self._settings = settings
        self._verifier = verifier

    @classmethod
    def from_settings(cls, settings: SecuritySettings, *, replay_guard: ReplayGuard) -> EhrAuthenticator:
        verifier = EhrTokenVerifier(settings, replay_guard=replay_guard) if settings.enabled else None
        return cls(settings, verifier)

    @property
    def verifies(self) -> bool:
        """False when authentication is off (development): every request is the anonymous client."""
        return self._verifier is not None

    def authenticate(self, request: Request) -> AuthenticatedClient:
        if self._verifier is None:
            return ANONYMOUS_CLIENT
        try:
            token = bearer_token(request.headers.get("authorization"))
            client = self._verifier.verify(token, audience=audience_for(request, self._settings.public_base_url))
        except EhrAuthenticationError as exc:
            EHR_AUTH_REJECTED.labels(exc.reason.value).inc()
            log.warning("ehr_auth.rejected", reason=exc.reason.value, issuer=exc.issuer, path=request.url.path)
            raise
        EHR_AUTH_ACCEPTED.inc()
        return client


def require_ehr_client(authenticator: EhrAuthenticator) -> Callable[[Request], AuthenticatedClient]:
    """A dependency bound to one authenticator: `Depends(require_ehr_client(a))`, or in a router's `dependencies`.

    It is a plain `def`, so FastAPI runs it in its thread pool: a JWKS fetch or the replay insert never blocks the
    event loop.
    """

    def ehr_client_dependency(request: Request) -> AuthenticatedClient:
        return authenticator.authenticate(request)

    return ehr_client_dependency


async def ehr_client(request: Request) -> AuthenticatedClient:
    """The dependency behind `EhrClientDep`: uses the authenticator the app factory put on `app.state`.

    Verifying may fetch a JWKS and writes the token's jti, so it runs in the thread pool; with authentication off
    there is nothing to wait for, and the hop (about a millisecond under load) is skipped.
    """
    authenticator: EhrAuthenticator = getattr(request.app.state, APP_STATE_KEY)
    if not authenticator.verifies:
        return ANONYMOUS_CLIENT
    return await run_in_threadpool(authenticator.authenticate, request)


EhrClientDep = Annotated[AuthenticatedClient, Depends(ehr_client)]
