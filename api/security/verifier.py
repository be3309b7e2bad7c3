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

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.jwks_http import HttpJwksFetcher, JwksFetcher
from api.security.key_cache import KeyCache, VerificationKey, parse_key_set
from api.security.replay import ReplayGuard, replay_key
from api.security.settings import SecuritySettings, TrustedIssuer
from api.security.token import UnverifiedToken, parse_compact

# Asymmetric only: `none` has no signature, and with HMAC anyone holding the (public) key could sign.
ALLOWED_ALGORITHMS = frozenset({"ES384", "RS384"})
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
        self._keys = KeyCache(
            fetcher or HttpJwksFetcher(timeout_s=settings.jwks_timeout_seconds),
            default_ttl_s=settings.jwks_cache_seconds,
            max_ttl_s=settings.jwks_max_cache_seconds,
            min_refetch_s=settings.jwks_min_refetch_seconds,
            allow_spec_test_key=settings.allow_spec_test_key,
            clock=monotonic,
        )
        # Inline key sets are parsed once, here, so a configuration mistake shows at start-up, not on first call.
        self._inline_keys = {
            issuer.iss: parse_key_set(issuer.jwks, allow_spec_test_key=settings.allow_spec_test_key)
            for issuer in settings.issuers
            if issuer.jwks is not None
        }

    def verify(self, token: str, *, audience: str) -> AuthenticatedClient:
        """The client a token authenticates for a call to `audience`, or EhrAuthenticationError with the reason."""
        unverified = parse_compact(token)
        alg, kid = _check_header(unverified.header)
        issuer = self._trusted_issuer(unverified.claims)
        key = self._key(issuer, kid, unverified.header.get("jku"))
        if key is None:
            raise EhrAuthenticationError(RejectReason.UNKNOWN_KID, issuer=issuer.iss)
        if not key.fits(alg):
            raise EhrAuthenticationError(RejectReason.KEY_ALGORITHM_MISMATCH, issuer=issuer.iss)
        _check_signature(unverified, key, alg, issuer.iss)
        return self._check_claims(unverified.claims, issuer, audience)

    def _trusted_issuer(self, claims: dict[str, Any]) -> TrustedIssuer:
        iss = claims.get("iss")
        if not isinstance(iss, str):
            raise EhrAuthenticationError(RejectReason.CLAIM_MISSING)
        issuer = self._settings.issuer(iss)
        if issuer is None:
            raise EhrAuthenticationError(RejectReason.ISSUER_NOT_TRUSTED)
        return issuer

    def _key(self, issuer: TrustedIssuer, kid: str, jku: object) -> VerificationKey | None:
        if jku is not None:
            # Compared as exact strings: `jku` is a URL the token asks us to fetch, so only listed ones are fetched.
            if not isinstance(jku, str) or jku not in issuer.allowed_jku:
                raise EhrAuthenticationError(RejectReason.JKU_NOT_ALLOWED, issuer=issuer.iss)
            return self._keys.key(jku, kid)
        if issuer.iss in self._inline_keys:
            return self._inline_keys[issuer.iss].get(kid)
        if issuer.jwks_url is not None:
            return self._keys.key(issuer.jwks_url, kid)
        return None

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


def _check_header(header: dict[str, Any]) -> tuple[str, str]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise EhrAuthenticationError(RejectReason.ALGORITHM_NOT_ALLOWED)
    if header.get("typ") != "JWT":
        raise EhrAuthenticationError(RejectReason.TYPE_NOT_JWT)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise EhrAuthenticationError(RejectReason.KID_MISSING)
    # A token that makes its meaning depend on extensions we do not implement cannot be accepted (RFC 7515 4.1.11);
    # embedded keys (jwk, x5c, x5u) would let the token bring its own trust, so they are refused outright.
    if any(name in header for name in ("crit", "jwk", "x5c", "x5u")):
        raise EhrAuthenticationError(RejectReason.UNSUPPORTED_HEADER)
    return alg, kid


def _check_signature(token: UnverifiedToken, key: VerificationKey, alg: str, iss: str) -> None:
    try:
        jws.deserialize_compact(token.compact, key.key, algorithms=[alg])
    except BadSignatureError as exc:
        raise EhrAuthenticationError(RejectReason.BAD_SIGNATURE, issuer=iss) from exc
    except (JoseError, ValueError) as exc:
        raise EhrAuthenticationError(RejectReason.MALFORMED, issuer=iss) from exc


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
