"""Builders for the EHR authentication tests: signing keys, tokens (well-formed or deliberately not), a fake JWKS
server and a hand-set clock."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, Key, RSAKey

from api.security.jwks_http import FetchedJwks, JwksFetchError
from api.security.replay import MemoryReplayGuard, ReplayGuard
from api.security.settings import SecuritySettings, TrustedIssuer
from api.security.verifier import EhrTokenVerifier

NOW = 1_800_000_000  # 2027-01-15, well clear of the specification example's expiry in 2015
ISS = "https://ehr.example.org"
OTHER_ISS = "https://other-ehr.example.net"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
OTHER_JWKS_URL = "https://other-ehr.example.net/jwks"
AUDIENCE = "https://cds.example.org/cds-services/sepsis-news2"
OMIT: Any = object()  # a claim or header member to leave out


@dataclass(frozen=True)
class SigningKey:
    private: Key
    alg: str

    @property
    def kid(self) -> str:
        kid = self.private.kid
        assert kid is not None
        return kid

    def public_jwk(self) -> dict[str, Any]:
        return {**self.private.as_dict(private=False), "use": "sig", "alg": self.alg}


@cache
def ec_key(kid: str = "ec-1") -> SigningKey:
    return SigningKey(ECKey.generate_key("P-384", parameters={"kid": kid}, private=True), "ES384")


@cache
def rsa_key(kid: str = "rsa-1") -> SigningKey:
    return SigningKey(RSAKey.generate_key(2048, parameters={"kid": kid}, private=True), "RS384")


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid payload for a call to AUDIENCE at NOW; a value of OMIT removes the claim."""
    values: dict[str, Any] = {
        "iss": ISS,
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": str(uuid.uuid4()),
        "sub": "ehr-client-7",
        "tenant": "2ddd6c3a-8e9a-44c6-a305-52111ad302a2",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not OMIT}


def mint(key: SigningKey, payload: dict[str, Any] | None = None, *, alg: str | None = None, **header: Any) -> str:
    """A token signed with `key` (by default with its own algorithm, kid and `typ: JWT`); header members of any
    value, even invalid ones, are written as given. Signed with `cryptography` directly, not with the library the
    verifier uses, so a shared mistake cannot make both sides agree."""
    members = {"alg": alg or key.alg, "typ": "JWT", "kid": key.kid, **header}
    members = {name: value for name, value in members.items() if value is not OMIT}
    _, signing_input = hand_made(members, payload or claims(), b"")
    return f"{signing_input.decode()}.{b64url(sign(key, str(members['alg']), signing_input))}"


def sign(key: SigningKey, alg: str, signing_input: bytes) -> bytes:
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    private = key.private.raw_value
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(digest)))
        size = (private.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    assert isinstance(private, rsa.RSAPrivateKey)
    return private.sign(signing_input, padding.PKCS1v15(), digest)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hand_made(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> tuple[str, bytes]:
    """A compact token assembled by hand; returns it with its signing input, for signatures computed outside."""
    encode = json.dumps
    signing_input = f"{b64url(encode(header).encode())}.{b64url(encode(payload).encode())}"
    return f"{signing_input}.{b64url(signature)}", signing_input.encode("ascii")


class FakeClock:
    """Seconds since the epoch, moved by hand; serves as both the wall clock and the monotonic clock."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeJwksServer:
    """JWK Set documents by URL, counting fetches; a URL missing from `documents` fails like an unreachable host."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_age: int | None = None
    fetches: list[str] = field(default_factory=list)

    def fetch(self, url: str) -> FetchedJwks:
        self.fetches.append(url)
        if url not in self.documents:
            raise JwksFetchError("unreachable")
        return FetchedJwks(document=self.documents[url], max_age=self.max_age)


def issuer(iss: str = ISS, **fields: Any) -> TrustedIssuer:
    fields.setdefault("jwks_url", JWKS_URL if iss == ISS else OTHER_JWKS_URL)
    return TrustedIssuer(iss=iss, **fields)


def security_settings(*issuers: TrustedIssuer, **fields: Any) -> SecuritySettings:
    return SecuritySettings(enabled=True, issuers=issuers or (issuer(),), **fields)


@dataclass
class Harness:
    """A verifier with fake keys server, clock and replay guard, all reachable from the test."""

    verifier: EhrTokenVerifier
    server: FakeJwksServer
    clock: FakeClock

    def verify(self, token: str, audience: str = AUDIENCE) -> Any:
        return self.verifier.verify(token, audience=audience)


def harness(
    settings: SecuritySettings | None = None,
    *,
    documents: dict[str, dict[str, Any]] | None = None,
    replay_guard: ReplayGuard | None = None,
    clock: FakeClock | None = None,
) -> Harness:
    """By default: ISS trusted, its JWKS_URL serving ec_key() and rsa_key()."""
    server = FakeJwksServer(documents if documents is not None else {JWKS_URL: jwks(ec_key(), rsa_key())})
    clock = clock or FakeClock()
    verifier = EhrTokenVerifier(
        settings or security_settings(),
        replay_guard=replay_guard or MemoryReplayGuard(),
        fetcher=server,
        clock=clock,
        monotonic=clock,
    )
    return Harness(verifier, server, clock)


# Tokens no well-formed compact JWS looks like, built around one valid token's segments.
_VALID = mint(ec_key())
_HEADER, _PAYLOAD, _SIGNATURE = _VALID.split(".")
_JSON_STRING = b'"claims"'
_NAN = b'{"exp": NaN}'
_DUPLICATE = b'{"alg": "none", "alg": "ES384"}'
_HUGE = b'{"alg": "ES384", "x": "' + b"A" * 20_000 + b'"}'

MALFORMED_TOKENS = {
    "garbage": "not a token at all",
    "empty": "",
    "two segments": f"{_HEADER}.{_PAYLOAD}",
    "four segments": f"{_VALID}.{_SIGNATURE}",
    "empty signature": f"{_HEADER}.{_PAYLOAD}.",
    "padding characters": f"{_HEADER}==.{_PAYLOAD}.{_SIGNATURE}",
    "standard base64 alphabet": f"{_HEADER}.{_PAYLOAD}.{_SIGNATURE[:-2]}+/",
    "impossible base64 length": f"{_HEADER}A.{_PAYLOAD}.{_SIGNATURE}",
    "header not json": f"{b64url(b'{not json')}.{_PAYLOAD}.{_SIGNATURE}",
    "header a json array": f"{b64url(b'[1, 2]')}.{_PAYLOAD}.{_SIGNATURE}",
    "header not utf-8": f"{b64url(bytes([0xFF, 0xFE, 0x7B]))}.{_PAYLOAD}.{_SIGNATURE}",
    "payload a json string": f"{_HEADER}.{b64url(_JSON_STRING)}.{_SIGNATURE}",
    "payload with NaN": f"{_HEADER}.{b64url(_NAN)}.{_SIGNATURE}",
    "duplicate header member": f"{b64url(_DUPLICATE)}.{_PAYLOAD}.{_SIGNATURE}",
    "deeply nested payload": f"{_HEADER}.{b64url(b'[' * 2000 + b']' * 2000)}.{_SIGNATURE}",
    "huge header": f"{b64url(_HUGE)}.{_PAYLOAD}.{_SIGNATURE}",
    "non-ascii characters": f"{_HEADER}.{_PAYLOAD}.{_SIGNATURE[:-1]}é",
    "whitespace inside": f"{_HEADER}. {_PAYLOAD}.{_SIGNATURE}",
    "nul byte": f"{_HEADER}.{_PAYLOAD}\x00.{_SIGNATURE}",
}
