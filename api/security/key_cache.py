"""The verification keys of trusted EHRs: parsed from JWK Sets, cached with an expiry, refetched at a bounded rate."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey, import_key

from api.security.jwks_http import JwksFetcher, JwksFetchError
from api.security.settings import is_spec_test_key
from cdsctl.logs import get_logger

log = get_logger(__name__)

# The only key shapes behind the two algorithms we accept: ES384 needs P-384, RS384 a modulus of 2048 bits or more.
_EC_CURVE = "P-384"
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class VerificationKey:
    key: Key
    # The `alg` the JWK declares, if any: a token must then use exactly that algorithm with it.
    alg: str | None

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False
        if alg == "ES384":
            return isinstance(self.key, ECKey) and self.key.curve_name == _EC_CURVE
        if alg == "RS384":
            return isinstance(self.key, RSAKey) and self.key.raw_value.key_size >= _MIN_RSA_BITS
        return False


def parse_key_set(document: Mapping[str, Any], *, allow_spec_test_key: bool) -> dict[str, VerificationKey]:
    """The usable public signing keys of a JWK Set, by kid. Keys we could never verify with are left out; a kid
    that appears twice is left out entirely, since we could not tell which key the EHR meant."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        return {}
    keys: dict[str, VerificationKey] = {}
    ambiguous: set[str] = set()
    for entry in entries:
        parsed = _parse_key(entry, allow_spec_test_key=allow_spec_test_key)
        if parsed is None:
            continue
        kid, key = parsed
        if kid in keys:
            ambiguous.add(kid)
        keys[kid] = key
    return {kid: key for kid, key in keys.items() if kid not in ambiguous}


def _parse_key(entry: object, *, allow_spec_test_key: bool) -> tuple[str, VerificationKey] | None:
    if not isinstance(entry, dict):
        return None
    kid, kty, use, alg = entry.get("kid"), entry.get("kty"), entry.get("use", "sig"), entry.get("alg")
    if not isinstance(kid, str) or not kid or kty not in ("EC", "RSA") or use != "sig":
        return None
    if alg is not None and alg not in ("ES384", "RS384"):
        return None
    if is_spec_test_key(entry) and not allow_spec_test_key:
        log.warning("ehr_auth.spec_test_key_ignored")
        return None
    if kty == "RSA" and _modulus_bits(entry.get("n")) < _MIN_RSA_BITS:
        return None
    # Only the public members are imported: a JWKS that (wrongly) publishes a private key must not make us hold it.
    public = {name: entry[name] for name in ("kty", "crv", "x", "y", "n", "e") if name in entry}
    try:
        key = import_key(public)
    except (JoseError, ValueError, TypeError):
        return None
    verification_key = VerificationKey(key=key, alg=alg)
    if not (verification_key.fits("ES384") or verification_key.fits("RS384")):
        return None
    return kid, verification_key


def _modulus_bits(n: object) -> int:
    # Read before import, so a weak key is skipped quietly instead of being built (and warned about) first.
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except (binascii.Error, ValueError):
        return 0


@dataclass
class _Entry:
    keys: dict[str, VerificationKey]
    expires_at: float


class KeyCache:
    """Keys by JWKS URL. A URL is fetched when its keys expired, or once when a kid is unknown, but never more
    often than `min_refetch_s`, so a flood of tokens with made-up kids costs the EHR's JWKS server nothing."""

    def __init__(
        self,
        fetcher: JwksFetcher,
        *,
        default_ttl_s: float,
        max_ttl_s: float,
        min_refetch_s: float,
        allow_spec_test_key: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._default_ttl_s = default_ttl_s
        self._max_ttl_s = max_ttl_s
        self._min_refetch_s = min_refetch_s
        self._allow_spec_test_key = allow_spec_test_key
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._last_attempt: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def key(self, url: str, kid: str) -> VerificationKey | None:
        with self._lock_for(url):
            now = self._clock()
            entry = self._entries.get(url)
            if entry is None or now >= entry.expires_at:
                entry = self._refresh(url, now)
            elif kid not in entry.keys:
                # Perhaps the EHR rotated its keys since we fetched: look once more, if not looked very recently.
                entry = self._refresh(url, now) or entry
            return None if entry is None else entry.keys.get(kid)

    def _lock_for(self, url: str) -> threading.Lock:
        # One lock per URL: concurrent requests wait for a single fetch instead of each starting their own.
        with self._locks_guard:
            return self._locks.setdefault(url, threading.Lock())

    def _refresh(self, url: str, now: float) -> _Entry | None:
        last = self._last_attempt.get(url)
        if last is not None and now - last < self._min_refetch_s:
            entry = self._entries.get(url)
            return entry if entry is not None and now < entry.expires_at else None
        self._last_attempt[url] = now
        try:
            fetched = self._fetcher.fetch(url)
        except JwksFetchError as exc:
            # Fail closed for expired keys (never trusted past the lifetime their server gave them); keys still
            # within it stay usable, so a JWKS outage during an unknown-kid refetch does not lock out every EHR.
            log.warning("ehr_auth.jwks_fetch_failed", url=url, error=str(exc))
            return None
        ttl = self._default_ttl_s if fetched.max_age is None else fetched.max_age
        ttl = min(max(ttl, self._min_refetch_s), self._max_ttl_s)
        entry = _Entry(
            keys=parse_key_set(fetched.document, allow_spec_test_key=self._allow_spec_test_key),
            expires_at=now + ttl,
        )
        self._entries[url] = entry
        log.info("ehr_auth.jwks_fetched", url=url, keys=len(entry.keys), ttl_s=ttl)
        return entry
