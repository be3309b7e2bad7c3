"""Verifies an EHR's bearer JWT as CDS Hooks 2.0.1 asks: trusted issuer and key, ES384/RS384 signature, audience,
times and a single use of each token."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.jwks_http import JwksFetcher
from api.security.replay import ReplayGuard, replay_key
from api.security.settings import SecuritySettings, TrustedIssuer
from api.security.signed import SignedTokenReader

# Asymmetric only: `none` has no signature, and with HMAC anyone holding the (public) key could sign.
# Bounds on identifiers we hand on: sub and tenant end up in the audit trail's 128-character columns.
_MAX_ID_CHARS = 128
_MAX_JTI_CHARS = 256


@dataclass(frozen=True)
class AuthenticatedClient:
    """The EHR a call came from. `sub` is its client id; `tenant` the organisation, when the EHR names one."""

    iss: str
    sub: str | None
    tenant: str | None
    jti: str | None

    @property
    def actor(self) -> str:
        """Who the audit trail names for this call: the client id, else the issuer."""
        return self.sub or self.iss


ANONYMOUS_CLIENT = AuthenticatedClient(iss="anonymous", sub=None, tenant=None, jti=None)


def normalise_url(url: str) -> str | None:
    """scheme://host[:port]/path with case-insensitive parts lowered and default ports dropped; None for anything
    that is not a plain http(s) URL (a query, fragment or credentials never name a CDS endpoint)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("http", "https") or not host or parts.query or parts.fragment or parts.username:
        return None
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if scheme == "https" else 80
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


class EhrTokenVerifier:
    """Stateless apart from its key cache and replay guard; safe to share between threads."""

    def __init__(
        self,
        settings: SecuritySettings,
        *,
        replay_guard: ReplayGuard,
        fetcher: JwksFetcher | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._replay_guard = replay_guard
        self._clock = clock
        self._reader = SignedTokenReader(
            settings, allow_spec_test_key=settings.allow_spec_test_key, fetcher=fetcher, monotonic=monotonic
        )

    def verify(self, token: str, *, audience: str) -> AuthenticatedClient:
        """The client a token authenticates for a call to `audience`, or EhrAuthenticationError with the reason."""
        claims, issuer = self._reader.signed_claims(token)
        return self._check_claims(claims, issuer, audience)

    def _check_claims(self, claims: dict[str, Any], issuer: TrustedIssuer, audience: str) -> AuthenticatedClient:
        def reject(reason: RejectReason) -> EhrAuthenticationError:
            return EhrAuthenticationError(reason, issuer=issuer.iss)

        if not _audience_matches(claims.get("aud"), audience):
            raise reject(RejectReason.AUDIENCE_MISMATCH)
        if "exp" not in claims or "iat" not in claims:
            raise reject(RejectReason.CLAIM_MISSING)
        now, skew = self._clock(), self._settings.clock_skew_seconds
        exp = check_token_times(
            claims,
            now=now,
            skew=skew,
            max_lifetime=self._settings.max_token_lifetime_seconds,
            reject=reject,
        )
        jti, sub, tenant = claims.get("jti"), claims.get("sub"), claims.get("tenant")
        if jti is None:
            raise reject(RejectReason.CLAIM_MISSING)
        if not _short_text(jti, _MAX_JTI_CHARS) or not _optional_text(sub) or not _optional_text(tenant):
            raise reject(RejectReason.CLAIM_INVALID)
        if issuer.allowed_sub and sub not in issuer.allowed_sub:
            raise reject(RejectReason.SUBJECT_NOT_ALLOWED)
        # Last, so only a token valid in every other respect uses up its jti. Remembered until the token could no
        # longer be accepted anyway (its expiry plus the clock skew we allow).
        first_use = self._replay_guard.first_use(
            replay_key(issuer.iss, jti),
            expires_at=datetime.fromtimestamp(exp + skew, UTC),
            now=datetime.fromtimestamp(now, UTC),
        )
        if not first_use:
            raise reject(RejectReason.REPLAYED)
        return AuthenticatedClient(iss=issuer.iss, sub=sub, tenant=tenant, jti=jti)


def _audience_matches(aud: object, audience: str) -> bool:
    expected = normalise_url(audience)
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return expected is not None and any(isinstance(v, str) and normalise_url(v) == expected for v in values)


def check_token_times(
    claims: dict[str, Any],
    *,
    now: float,
    skew: float,
    max_lifetime: float,
    reject: Callable[[RejectReason], EhrAuthenticationError],
) -> float:
    """The time claims of a token (EHR or staff): exp and iat numeric, not expired, not issued or valid only in the
    future (within the clock skew), and no longer-lived than allowed. Returns exp."""
    exp, iat, nbf = _instant(claims.get("exp")), _instant(claims.get("iat")), _instant(claims.get("nbf", 0))
    if exp is None or iat is None or nbf is None:
        raise reject(RejectReason.CLAIM_INVALID)
    if now >= exp + skew:
        raise reject(RejectReason.EXPIRED)
    if iat > now + skew:
        raise reject(RejectReason.ISSUED_IN_FUTURE)
    if nbf > now + skew:
        raise reject(RejectReason.NOT_YET_VALID)
    if exp <= iat:
        raise reject(RejectReason.CLAIM_INVALID)
    if exp - iat > max_lifetime:
        raise reject(RejectReason.LIFETIME_TOO_LONG)
    return exp


def _instant(value: object) -> float | None:
    # bool is an int in Python, but `true` is not a NumericDate.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _short_text(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _optional_text(value: object) -> bool:
    return value is None or _short_text(value, _MAX_ID_CHARS)
