"""JWKS caching: the server's max-age within bounds, one refetch at a time, and only usable signing keys kept."""

from __future__ import annotations

from typing import Any

import pytest

from api.security.jwks_http import cache_max_age
from api.security.key_cache import KeyCache, parse_key_set
from tests.unit.api.security.tokens import JWKS_URL, FakeClock, FakeJwksServer, ec_key, jwks, rsa_key


def _cache(server: FakeJwksServer, clock: FakeClock) -> KeyCache:
    return KeyCache(server, default_ttl_s=600, max_ttl_s=3600, min_refetch_s=60, allow_spec_test_key=False, clock=clock)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("max-age=300", 300),
        ("public, max-age=120, must-revalidate", 120),
        ('MAX-AGE="45"', 45),
        ("no-store", 0),
        ("private, no-cache", 0),
        ("s-maxage=100", None),
        ("max-age=abc", None),
        ("", None),
        (None, None),
    ],
)
def test_the_cache_lifetime_is_read_from_cache_control(header: str | None, seconds: int | None) -> None:
    assert cache_max_age(header) == seconds


@pytest.mark.parametrize(("max_age", "expected_ttl"), [(None, 600), (300, 300), (10**6, 3600), (0, 60), (5, 60)])
def test_keys_are_kept_for_the_servers_max_age_within_bounds(max_age: int | None, expected_ttl: int) -> None:
    server = FakeJwksServer({JWKS_URL: jwks(ec_key())}, max_age=max_age)
    clock = FakeClock(0)
    cache = _cache(server, clock)
    assert cache.key(JWKS_URL, ec_key().kid) is not None

    clock.now = expected_ttl - 1
    cache.key(JWKS_URL, ec_key().kid)
    assert len(server.fetches) == 1

    clock.now = expected_ttl
    cache.key(JWKS_URL, ec_key().kid)
    assert len(server.fetches) == 2


def test_keys_dropped_from_the_jwks_stop_verifying_after_the_cache_expires() -> None:
    server = FakeJwksServer({JWKS_URL: jwks(ec_key(), rsa_key())})
    clock = FakeClock(0)
    cache = _cache(server, clock)
    assert cache.key(JWKS_URL, rsa_key().kid) is not None

    server.documents[JWKS_URL] = jwks(ec_key())
    clock.now = 600

    assert cache.key(JWKS_URL, rsa_key().kid) is None
    assert cache.key(JWKS_URL, ec_key().kid) is not None


def test_a_failed_refetch_keeps_keys_that_are_still_fresh() -> None:
    server = FakeJwksServer({JWKS_URL: jwks(ec_key())})
    clock = FakeClock(0)
    cache = _cache(server, clock)
    cache.key(JWKS_URL, ec_key().kid)
    del server.documents[JWKS_URL]
    clock.now = 100

    assert cache.key(JWKS_URL, "unknown") is None
    assert cache.key(JWKS_URL, ec_key().kid) is not None
    assert len(server.fetches) == 2


def test_expired_keys_are_not_trusted_while_the_jwks_is_unreachable() -> None:
    server = FakeJwksServer({JWKS_URL: jwks(ec_key())})
    clock = FakeClock(0)
    cache = _cache(server, clock)
    cache.key(JWKS_URL, ec_key().kid)
    del server.documents[JWKS_URL]
    clock.now = 600

    assert cache.key(JWKS_URL, ec_key().kid) is None
    clock.now = 630
    assert cache.key(JWKS_URL, ec_key().kid) is None
    assert len(server.fetches) == 2


def _entries(*keys: Any) -> dict[str, Any]:
    return {"keys": list(keys)}


def test_only_public_signing_keys_of_usable_types_are_kept() -> None:
    ec, rsa = ec_key().public_jwk(), rsa_key().public_jwk()
    document = _entries(
        ec,
        rsa,
        {**ec, "kid": "for-encryption", "use": "enc"},
        {**ec, "kid": "declared-es256", "alg": "ES256"},
        {"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"},
        {**ec, "kid": "wrong-curve", "crv": "P-256"},
        {"kty": "EC", "kid": "broken", "crv": "P-384", "x": "AAAA", "y": "AAAA"},
        {**ec, "kid": 5},
        "not an object",
    )

    assert set(parse_key_set(document, allow_spec_test_key=False)) == {ec["kid"], rsa["kid"]}


def test_a_kid_listed_twice_is_not_used_at_all() -> None:
    twin = {**rsa_key().public_jwk(), "kid": ec_key().kid}

    assert parse_key_set(_entries(ec_key().public_jwk(), twin), allow_spec_test_key=False) == {}


def test_a_published_private_key_is_kept_only_as_its_public_half() -> None:
    leaked = ec_key().private.as_dict(private=True)

    keys = parse_key_set(_entries(leaked), allow_spec_test_key=False)

    assert not keys[ec_key().kid].key.is_private


@pytest.mark.parametrize("document", [{}, {"keys": "none"}, {"keys": None}])
def test_a_document_that_is_not_a_jwk_set_yields_no_keys(document: dict[str, Any]) -> None:
    assert parse_key_set(document, allow_spec_test_key=False) == {}
