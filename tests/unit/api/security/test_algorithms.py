"""Only ES384 and RS384 signatures are accepted, each with a key of its own kind."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc.jwk import ECKey, RSAKey

from api.security.errors import EhrAuthenticationError, RejectReason
from tests.unit.api.security.tokens import (
    ISS,
    JWKS_URL,
    SigningKey,
    b64url,
    claims,
    ec_key,
    hand_made,
    harness,
    jwks,
    mint,
    rsa_key,
)


def _refusal(token: str, **harness_args: object) -> RejectReason:
    with pytest.raises(EhrAuthenticationError) as refused:
        harness(**harness_args).verify(token)  # type: ignore[arg-type]
    return refused.value.reason


def test_a_valid_es384_token_is_accepted_and_names_the_client() -> None:
    payload = claims()

    client = harness().verify(mint(ec_key(), payload))

    assert (client.iss, client.sub, client.tenant, client.jti) == (
        ISS,
        "ehr-client-7",
        payload["tenant"],
        payload["jti"],
    )
    assert client.actor == "ehr-client-7"


def test_a_valid_rs384_token_is_accepted() -> None:
    assert harness().verify(mint(rsa_key())).iss == ISS


def test_a_token_with_alg_none_is_refused() -> None:
    token, _ = hand_made({"alg": "none", "typ": "JWT", "kid": ec_key().kid}, claims(), b"")
    unsigned = token.rstrip(".") + "."

    assert _refusal(unsigned) is RejectReason.MALFORMED
    assert _refusal(token.rsplit(".", 1)[0] + ".AAAA") is RejectReason.ALGORITHM_NOT_ALLOWED


def test_an_hs256_token_keyed_with_the_public_key_is_refused() -> None:
    # The classic confusion attack: the verifier's own public key, used as an HMAC secret.
    rsa_public = rsa_key().private.as_dict(private=False)
    pem = RSAKey.import_key(rsa_public).as_pem()
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key().kid}
    for secret in (pem, json.dumps(rsa_public).encode()):
        _, signing_input = hand_made(header, claims(), b"")
        token = f"{signing_input.decode()}.{b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())}"

        assert _refusal(token) is RejectReason.ALGORITHM_NOT_ALLOWED


@pytest.mark.parametrize("alg", ["HS384", "HS512", "PS384", "EdDSA", "ES512", "RS512"])
def test_other_algorithm_names_are_refused_before_any_key_is_looked_up(alg: str) -> None:
    token, _ = hand_made({"alg": alg, "typ": "JWT", "kid": ec_key().kid}, claims(), b"signature")
    checks = harness()

    with pytest.raises(EhrAuthenticationError) as refused:
        checks.verify(token)

    assert refused.value.reason is RejectReason.ALGORITHM_NOT_ALLOWED
    assert checks.server.fetches == []


def test_an_rs256_token_is_refused_even_from_a_trusted_rsa_key() -> None:
    assert _refusal(mint(rsa_key(), alg="RS256")) is RejectReason.ALGORITHM_NOT_ALLOWED


def test_an_es256_token_is_refused_even_from_a_trusted_p256_key() -> None:
    p256 = SigningKey(ECKey.generate_key("P-256", parameters={"kid": "p256"}, private=True), "ES256")
    token = mint(p256)

    assert _refusal(token, documents={JWKS_URL: jwks(p256)}) is RejectReason.ALGORITHM_NOT_ALLOWED


def test_an_rs384_header_naming_an_ec_key_is_refused() -> None:
    # Claims RS384 but points at the EC key: the key cannot verify that algorithm, whatever the signature is.
    token = mint(rsa_key(), kid=ec_key().kid)

    assert _refusal(token) is RejectReason.KEY_ALGORITHM_MISMATCH


def test_a_key_published_for_es384_is_not_used_for_another_algorithm() -> None:
    rsa_declared_es384 = {**rsa_key().public_jwk(), "alg": "ES384"}

    assert _refusal(mint(rsa_key()), documents={JWKS_URL: {"keys": [rsa_declared_es384]}}) is (RejectReason.UNKNOWN_KID)


def test_an_rsa_key_shorter_than_2048_bits_is_never_used() -> None:
    # Made and used outside joserfc, which rightly refuses to build a key this weak.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- weak on purpose
    numbers = weak.public_key().public_numbers()
    public_jwk = {"kty": "RSA", "kid": "short", "n": b64url(numbers.n.to_bytes(128, "big")), "e": "AQAB"}
    _, signing_input = hand_made({"alg": "RS384", "typ": "JWT", "kid": "short"}, claims(), b"")
    signature = weak.sign(signing_input, padding.PKCS1v15(), hashes.SHA384())
    token = f"{signing_input.decode()}.{b64url(signature)}"

    assert _refusal(token, documents={JWKS_URL: {"keys": [public_jwk]}}) is RejectReason.UNKNOWN_KID


def test_a_signature_by_another_key_under_a_trusted_kid_is_refused() -> None:
    impostor = SigningKey(ECKey.generate_key("P-384", parameters={"kid": ec_key().kid}, private=True), "ES384")

    assert _refusal(mint(impostor)) is RejectReason.BAD_SIGNATURE
