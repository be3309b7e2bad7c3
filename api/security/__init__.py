"""Authentication of the EHRs that call us (CDS Hooks 2.0.1 "Trusting CDS Clients"): signed JWT bearer tokens,
verified against trusted issuers' keys, for one audience and one use each."""

# Wiring (done once, in the app factory):
#   authenticator = EhrAuthenticator.from_settings(settings.security, replay_guard=SqlReplayGuard(engine))
#   app.state.ehr_authenticator = authenticator
#   app.add_exception_handler(EhrAuthenticationError, ehr_authentication_error_handler)
# and in each CDS Hooks route a parameter `client: EhrClientDep`, whose `client.actor` names the caller.

from api.security.dependency import (
    EhrAuthenticator,
    EhrClientDep,
    audience_for,
    bearer_token,
    ehr_client,
    require_ehr_client,
)
from api.security.errors import EhrAuthenticationError, RejectReason, ehr_authentication_error_handler
from api.security.replay import MemoryReplayGuard, ReplayGuard
from api.security.settings import SecuritySettings, TrustedIssuer, refuse_unsafe_in_production
from api.security.verifier import ANONYMOUS_CLIENT, AuthenticatedClient, EhrTokenVerifier

__all__ = [
    "ANONYMOUS_CLIENT",
    "AuthenticatedClient",
    "EhrAuthenticationError",
    "EhrAuthenticator",
    "EhrClientDep",
    "EhrTokenVerifier",
    "MemoryReplayGuard",
    "RejectReason",
    "ReplayGuard",
    "SecuritySettings",
    "TrustedIssuer",
    "audience_for",
    "bearer_token",
    "ehr_authentication_error_handler",
    "ehr_client",
    "refuse_unsafe_in_production",
    "require_ehr_client",
]
