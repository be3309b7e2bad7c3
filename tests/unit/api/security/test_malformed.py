"""Tokens that are not well-formed compact JWS are refused as malformed, never with an unexpected error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.replay import MemoryReplayGuard
from tests.strategies import byte_mutations
from tests.unit.api.security.tokens import MALFORMED_TOKENS, claims, ec_key, harness, mint, rsa_key


@pytest.mark.parametrize("token", MALFORMED_TOKENS.values(), ids=MALFORMED_TOKENS.keys())
def test_a_malformed_token_is_refused_as_malformed(token: str) -> None:
    with pytest.raises(EhrAuthenticationError) as refused:
        harness().verify(token)

    assert refused.value.reason is RejectReason.MALFORMED


def test_a_signature_spelled_non_canonically_is_refused() -> None:
    # RS384 signatures are 256 bytes: the last base64url character carries 4 unused bits. Setting them gives a
    # different string that decodes to the same signature; accepting it would let one token be sent many ways.
    token = mint(rsa_key())
    head, signature = token.rsplit(".", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = alphabet[alphabet.index(signature[-1]) | 0b0001]
    assert respelled != signature[-1]

    with pytest.raises(EhrAuthenticationError) as refused:
        harness().verify(f"{head}.{signature[:-1]}{respelled}")

    assert refused.value.reason is RejectReason.MALFORMED
    assert harness().verify(token).sub == "ehr-client-7"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), use_rsa=st.booleans())
def test_no_mutation_of_a_valid_token_is_ever_accepted(data: st.DataObject, use_rsa: bool) -> None:
    original = mint(rsa_key() if use_rsa else ec_key(), claims(jti="mutated"))
    mutated = data.draw(byte_mutations(original.encode("ascii")))
    # A fresh replay guard each time: a refusal must come from the mutation, never from an earlier acceptance.
    checks = harness(replay_guard=MemoryReplayGuard())

    with pytest.raises(EhrAuthenticationError) as refused:
        checks.verify(mutated.decode("latin-1"))

    assert refused.value.reason is not RejectReason.REPLAYED
