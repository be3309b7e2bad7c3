"""Strict reading of a compact JWS before any key is chosen: bounded size, canonical base64url, plain JSON objects."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from api.security.errors import EhrAuthenticationError, RejectReason

# Our EHR tokens are a few hundred bytes; the bound keeps a hostile header from costing us decoding work.
MAX_TOKEN_CHARS = 8 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class UnverifiedToken:
    """A token's header and claims as sent: nothing in it is to be believed until its signature is verified."""

    compact: str
    header: dict[str, Any]
    claims: dict[str, Any]


def parse_compact(token: str) -> UnverifiedToken:
    if len(token) > MAX_TOKEN_CHARS:
        raise EhrAuthenticationError(RejectReason.MALFORMED)
    segments = token.split(".")
    if len(segments) != 3 or not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise EhrAuthenticationError(RejectReason.MALFORMED)
    header_segment, claims_segment, signature_segment = segments
    header = _json_object(_decode_segment(header_segment))
    claims = _json_object(_decode_segment(claims_segment))
    # The signature is decoded too, only to insist on its canonical spelling: otherwise one signed token could be
    # sent under several spellings, and every spelling would verify.
    _decode_segment(signature_segment)
    return UnverifiedToken(compact=token, header=header, claims=claims)


def _decode_segment(segment: str) -> bytes:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EhrAuthenticationError(RejectReason.MALFORMED) from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise EhrAuthenticationError(RejectReason.MALFORMED)
    return raw


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_refuse_duplicate_members, parse_constant=_refuse)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EhrAuthenticationError(RejectReason.MALFORMED) from exc
    if not isinstance(value, dict):
        raise EhrAuthenticationError(RejectReason.MALFORMED)
    return value


def _refuse_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A member given twice could be read one way here and another way by the library that checks the signature.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _refuse(name: str) -> Any:
    # NaN and Infinity are not JSON; a time claim of Infinity would otherwise never expire.
    raise ValueError(f"{name} is not JSON")
