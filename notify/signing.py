"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", sent as `X-CDS-Signature: sha256=<hex>`; receivers
check it with `verify_signature`."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-CDS-Signature"
TIMESTAMP_HEADER = "X-CDS-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_SCHEME = "sha256="


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds, as text)."""
    # The timestamp is inside the MAC so a captured request cannot be replayed later with a fresh timestamp.
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    tolerance_seconds: float | None = None,
) -> bool:
    """Whether `header` signs exactly this body and timestamp. With `now` and `tolerance_seconds`, a timestamp
    further than the tolerance from `now` is refused too, which bounds how long a captured request stays usable."""
    if header is None or not header.startswith(_SCHEME) or not timestamp.isdigit():
        return False
    if now is not None and tolerance_seconds is not None and abs(now - int(timestamp)) > tolerance_seconds:
        return False
    # Constant-time comparison: a byte-by-byte early exit would leak how much of a forged signature was right.
    return hmac.compare_digest(signature(secret, timestamp, body), header)
