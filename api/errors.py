"""Error bodies: CDS Hooks clients get a plain JSON error with a clear message and the right status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.responses import JSONBytes
from api.schemas import ErrorRead


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


async def http_error_handler(request: Request, exc: Exception) -> JSONBytes:
    # FastAPI's own refusals (a body that is not JSON, 404, 405) in the project's error shape. Their details are
    # fixed phrases of the framework, never the submitted values.
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette's Allow names only the first route matching the path; with GET and POST on one path as separate
        # routes, it must name every method of every route there (RFC 9110 15.5.6).
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONBytes(error_body(exc.status_code, message), status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def validation_error_handler(_: Request, exc: Exception) -> JSONBytes:
    # CDS Hooks asks for 400 on a malformed request; FastAPI's default would be 422. Only locations and messages
    # are echoed, never the submitted values, which may carry PHI.
    assert isinstance(exc, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return JSONBytes(error_body(400, "; ".join(problems) or "invalid request"), status_code=400)


def document_validation_errors_as_400(app: FastAPI) -> None:
    """Make the OpenAPI schema say what validation_error_handler sends: FastAPI documents a failed parameter check
    as 422 with its own body, but clients get 400 with ours."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        error_schema = ErrorRead.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(error_schema.pop("$defs", {}))
        components.setdefault("ErrorRead", error_schema)
        bad_request = {
            "description": "Bad Request",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}},
        }
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", bad_request)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
