"""Canary bucketing: a sticky, salted hash of the patient key or unit id decides whether a candidate serves a call.

The same key always lands in the same bucket for a candidate (sticky: a patient never flips between configurations
mid-stay), and a fresh salt per candidate keeps two canaries from always picking the same patients.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from shadow.stages import BucketBy, CandidateRecord, Stage

_SCALE = float(1 << 64)


def new_salt() -> str:
    return secrets.token_hex(16)


def bucket(salt: str, key: str) -> float:
    """A number in [0, 1), uniform over keys, fixed for one salt and key."""
    digest = hashlib.sha256(f"{salt}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


@dataclass(frozen=True, slots=True)
class Assignment:
    """Whether a candidate serves this call, and the bucket that decided it (None when there was no key)."""

    served: bool
    bucket: float | None


def assign(candidate: CandidateRecord, *, patient_key: str | None, unit_id: str | None) -> Assignment:
    """A live candidate serves every call; a canary serves the calls whose bucket falls under its fraction. A call
    with no key to bucket on (no patient, or no unit for unit bucketing) stays on the live configuration."""
    if candidate.stage is Stage.LIVE:
        return Assignment(served=True, bucket=None)
    if candidate.stage is not Stage.CANARY:
        return Assignment(served=False, bucket=None)
    key = patient_key if candidate.bucket_by is BucketBy.PATIENT else unit_id
    if key is None:
        return Assignment(served=False, bucket=None)
    drawn = bucket(candidate.salt, key)
    return Assignment(served=drawn < candidate.fraction, bucket=drawn)
