"""Error bodies: CDS Hooks clients get a plain JSON error with a clear message and the right status."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from api.responses import JSONBytes


class HookRequestError(Exception):
    """A request the service cannot act on; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}


async def hook_request_error_handler(_: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, HookRequestError)
    return JSONBytes(error_body(exc.status, exc.message), status_code=exc.status)


async def validation_error_handler(_: Request, exc: Exception) -> JSONBytes:
    # CDS Hooks asks for 400 on a malformed request; FastAPI's default would be 422. Only locations and messages
    # are echoed, never the submitted values, which may carry PHI.
    assert isinstance(exc, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return JSONBytes(error_body(400, "; ".join(problems) or "invalid request"), status_code=400)
