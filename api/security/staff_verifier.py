"""Verifies a staff user's bearer JWT from the hospital identity provider: trusted issuer and key, ES384/RS384
signature, audience, times, subject and roles. Header, issuer, key and signature: api/security/signed.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.jwks_http import JwksFetcher
from api.security.settings import TrustedIssuer
from api.security.signed import SignedTokenReader
from api.security.staff_settings import Role, StaffAuthSettings
from api.security.verifier import check_token_times

_MAX_SUB_CHARS = 256
# More roles than any real account holds; the bound keeps a hostile claim from costing us work.
_MAX_ROLE_NAMES = 256


@dataclass(frozen=True)
class VerifiedStaffToken:
    """What a verified staff token says: who (issuer and subject, to be pseudonymised) and which roles."""

    iss: str
    sub: str
    roles: frozenset[Role]


class StaffTokenVerifier:
    """Stateless apart from its key cache; safe to share between threads. Staff tokens are session tokens, used for
    many calls, so there is no single-use (jti) check: their short lifetime bounds a stolen token instead."""

    def __init__(
        self,
        settings: StaffAuthSettings,
        *,
        fetcher: JwksFetcher | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._reader = SignedTokenReader(settings, allow_spec_test_key=False, fetcher=fetcher, monotonic=monotonic)

    def verify(self, token: str) -> VerifiedStaffToken:
        """The staff user a token names, or EhrAuthenticationError (a 401) with the reason."""
        claims, issuer = self._reader.signed_claims(token)
        return self._check_claims(claims, issuer)

    def _check_claims(self, claims: dict[str, Any], issuer: TrustedIssuer) -> VerifiedStaffToken:
        def reject(reason: RejectReason) -> EhrAuthenticationError:
            return EhrAuthenticationError(reason, issuer=issuer.iss)

        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self._settings.audience not in audiences:
            raise reject(RejectReason.AUDIENCE_MISMATCH)
        if "exp" not in claims or "iat" not in claims or "sub" not in claims:
            raise reject(RejectReason.CLAIM_MISSING)
        check_token_times(
            claims,
            now=self._clock(),
            skew=self._settings.clock_skew_seconds,
            max_lifetime=self._settings.max_token_lifetime_seconds,
            reject=reject,
        )
        sub = claims["sub"]
        if not isinstance(sub, str) or not 0 < len(sub) <= _MAX_SUB_CHARS:
            raise reject(RejectReason.CLAIM_INVALID)
        if issuer.allowed_sub and sub not in issuer.allowed_sub:
            raise reject(RejectReason.SUBJECT_NOT_ALLOWED)
        names = _claim_at(claims, self._settings.roles_claim)
        if names is None:
            names = []
        if not isinstance(names, list) or len(names) > _MAX_ROLE_NAMES or not all(isinstance(n, str) for n in names):
            raise reject(RejectReason.CLAIM_INVALID)
        roles = frozenset(role for name in names if (role := self._settings.role_for(name)) is not None)
        return VerifiedStaffToken(iss=issuer.iss, sub=sub, roles=roles)


def _claim_at(claims: dict[str, Any], path: str) -> object:
    value: object = claims
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value
