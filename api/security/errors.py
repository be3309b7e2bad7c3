"""Why a call was refused, as a value; the one exception that carries it, and the one 401 answer every caller gets."""

from __future__ import annotations

from enum import StrEnum

from fastapi import HTTPException, Request

from api.errors import error_body
from api.responses import JSONBytes

# The only words a refused caller hears: the precise reason goes to the log and the counter, never to the caller,
# so a forger cannot learn which of its attempts came closest.
UNAUTHENTICATED_MESSAGE = "authentication required"
CHALLENGE_HEADERS = {"WWW-Authenticate": "Bearer"}


class RejectReason(StrEnum):
    MISSING_CREDENTIALS = "missing_credentials"
    MALFORMED = "malformed"
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
    TYPE_NOT_JWT = "type_not_jwt"
    KID_MISSING = "kid_missing"
    UNSUPPORTED_HEADER = "unsupported_header"
    ISSUER_NOT_TRUSTED = "issuer_not_trusted"
    JKU_NOT_ALLOWED = "jku_not_allowed"
    UNKNOWN_KID = "unknown_kid"
    KEY_ALGORITHM_MISMATCH = "key_algorithm_mismatch"
    BAD_SIGNATURE = "bad_signature"
    AUDIENCE_MISMATCH = "audience_mismatch"
    CLAIM_MISSING = "claim_missing"
    CLAIM_INVALID = "claim_invalid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    SUBJECT_NOT_ALLOWED = "subject_not_allowed"
    REPLAYED = "replayed"


class EhrAuthenticationError(HTTPException):
    """A call whose bearer token we do not accept. A 401 even where no handler is registered for it (it is an
    HTTPException); with `ehr_authentication_error_handler` registered, the body takes the project's error shape."""

    def __init__(self, reason: RejectReason, *, issuer: str | None = None) -> None:
        super().__init__(status_code=401, detail=UNAUTHENTICATED_MESSAGE, headers=dict(CHALLENGE_HEADERS))
        self.reason = reason
        # Set only once the issuer is known to be one we trust, so it is never an attacker-chosen string.
        self.issuer = issuer

    def __str__(self) -> str:
        return f"EHR authentication failed: {self.reason}"


def unauthenticated_response() -> JSONBytes:
    return JSONBytes(error_body(401, UNAUTHENTICATED_MESSAGE), status_code=401, headers=dict(CHALLENGE_HEADERS))


async def ehr_authentication_error_handler(_: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, EhrAuthenticationError)
    return unauthenticated_response()
