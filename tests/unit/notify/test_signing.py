"""Webhook signatures: what the sender signs, the receiver verifies; any change to body, time or key fails."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from notify.signing import signature, verify_signature

SECRET = "shared-secret"
BODY = b'{"event":"alert","id":1}'


@given(secret=st.text(min_size=1), timestamp=st.integers(min_value=0).map(str), body=st.binary())
def test_a_signature_verifies_for_exactly_what_was_signed(secret: str, timestamp: str, body: bytes) -> None:
    header = signature(secret, timestamp, body)
    assert header.startswith("sha256=")
    assert verify_signature(secret, timestamp, body, header)
    assert not verify_signature(secret, timestamp, body + b" ", header)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Receivers in other languages reimplement this; the exact construction is part of the contract.
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, "1700000000", BODY) == f"sha256={expected}"


def test_a_signature_fails_with_another_key_another_time_or_no_header() -> None:
    header = signature(SECRET, "1700000000", BODY)
    assert not verify_signature("other-secret", "1700000000", BODY, header)
    assert not verify_signature(SECRET, "1700000001", BODY, header)
    assert not verify_signature(SECRET, "1700000000", BODY, None)
    assert not verify_signature(SECRET, "1700000000", BODY, header.removeprefix("sha256="))
    assert not verify_signature(SECRET, "not-a-time", BODY, signature(SECRET, "not-a-time", BODY))


def test_a_stale_timestamp_is_refused_when_the_receiver_sets_a_tolerance() -> None:
    header = signature(SECRET, "1700000000", BODY)
    assert verify_signature(SECRET, "1700000000", BODY, header, now=1700000200, tolerance_seconds=300)
    assert not verify_signature(SECRET, "1700000000", BODY, header, now=1700000400, tolerance_seconds=300)
