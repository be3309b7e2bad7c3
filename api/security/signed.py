"""The part of verifying a bearer JWT that EHR and staff tokens share: header, trusted issuer, its key (inline set,
its JWKS URL, or an allow-listed `jku`), and the ES384/RS384 signature. Claims are each verifier's own business."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.jwks_http import HttpJwksFetcher, JwksFetcher
from api.security.key_cache import KeyCache, VerificationKey, parse_key_set
from api.security.settings import TrustedIssuer
from api.security.token import UnverifiedToken, parse_compact

ALLOWED_ALGORITHMS = frozenset({"ES384", "RS384"})


class KeySettings(Protocol):
    """What both SecuritySettings and StaffAuthSettings say about issuers and key fetching."""

    @property
    def issuers(self) -> tuple[TrustedIssuer, ...]: ...
    @property
    def jwks_cache_seconds(self) -> int: ...
    @property
    def jwks_max_cache_seconds(self) -> int: ...
    @property
    def jwks_min_refetch_seconds(self) -> int: ...
    @property
    def jwks_timeout_seconds(self) -> float: ...

    def issuer(self, iss: str) -> TrustedIssuer | None: ...


class SignedTokenReader:
    """Stateless apart from its key cache; safe to share between threads."""

    def __init__(
        self,
        settings: KeySettings,
        *,
        allow_spec_test_key: bool,
        fetcher: JwksFetcher | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._keys = KeyCache(
            fetcher or HttpJwksFetcher(timeout_s=settings.jwks_timeout_seconds),
            default_ttl_s=settings.jwks_cache_seconds,
            max_ttl_s=settings.jwks_max_cache_seconds,
            min_refetch_s=settings.jwks_min_refetch_seconds,
            allow_spec_test_key=allow_spec_test_key,
            clock=monotonic,
        )
        # Inline key sets are parsed once, here, so a configuration mistake shows at start-up, not on first call.
        self._inline_keys = {
            issuer.iss: parse_key_set(issuer.jwks, allow_spec_test_key=allow_spec_test_key)
            for issuer in settings.issuers
            if issuer.jwks is not None
        }

    def signed_claims(self, token: str) -> tuple[dict[str, Any], TrustedIssuer]:
        """The claims of a token whose header, issuer, key and signature check out, with its trusted issuer; else
        EhrAuthenticationError (a 401) with the reason."""
        unverified = parse_compact(token)
        alg, kid = _check_header(unverified.header)
        issuer = self._trusted_issuer(unverified.claims)
        key = self._key(issuer, kid, unverified.header.get("jku"))
        if key is None:
            raise EhrAuthenticationError(RejectReason.UNKNOWN_KID, issuer=issuer.iss)
        if not key.fits(alg):
            raise EhrAuthenticationError(RejectReason.KEY_ALGORITHM_MISMATCH, issuer=issuer.iss)
        _check_signature(unverified, key, alg, issuer.iss)
        return unverified.claims, issuer

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
