"""The FastAPI application factory: wiring is done by cdsctl.bootstrap and handed in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.admin.policies import router as policies_router
from api.admin.silences import router as silences_router
from api.body_limit import BodyLimit
from api.candidates import router as candidates_router
from api.catalog import ServiceCatalog
from api.decisions import router as decisions_router
from api.errors import (
    HookRequestError,
    document_validation_errors_as_400,
    hook_request_error_handler,
    http_error_handler,
    validation_error_handler,
)
from api.feedback_actions import router as feedback_router
from api.hook_runner import InFlight
from api.pipeline import HookPipeline
from api.prefetch import PrefetchResolver, make_fhir_client
from api.responses import JSONBytes
from api.routes import router
from api.security import EhrAuthenticationError, EhrAuthenticator, ehr_authentication_error_handler
from api.security.dependency import APP_STATE_KEY
from cdsctl.logs import get_logger
from cdsctl.settings import Settings

log = get_logger(__name__)


def create_app(
    *,
    settings: Settings,
    catalog: ServiceCatalog,
    pipeline: HookPipeline,
    authenticator: EhrAuthenticator,
    readiness: Callable[[], dict[str, bool]] = lambda: {},
    background: Callable[[], Callable[[], None]] | None = None,
) -> FastAPI:
    in_flight = InFlight(pipeline, settings.resolved_hook_threads, settings.hook_batch_max)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The FHIR client belongs to the running event loop, so it is made here rather than at wiring time.
        client = make_fhir_client()
        app.state.prefetch = PrefetchResolver(
            client,
            allow_http=settings.fhir_allow_http,
            max_pages=settings.prefetch_max_pages,
            max_entries=settings.prefetch_max_entries,
            timeout=settings.prefetch_timeout_seconds,
            allowed_origins=settings.fhir_server_origins,
            salt=settings.pseudonym_salt,
        )
        # Work that lives as long as the app (the in-process notify worker): `background` starts it and returns
        # its stop, called last, off the event loop, since it waits for the row in hand.
        stop_background = background() if background is not None else None
        try:
            yield
        finally:
            # Graceful shutdown: hook work past its deadline is still recording; let it finish.
            left = await in_flight.drain(settings.shutdown_grace_seconds)
            if left:
                log.warning("shutdown.work_abandoned", tasks=left)
            await client.aclose()
            if stop_background is not None:
                await asyncio.to_thread(stop_background)

    app = FastAPI(title="cds-control-plane", version="0.1.0", default_response_class=JSONBytes, lifespan=lifespan)
    app.state.in_flight = in_flight
    app.state.readiness = readiness
    setattr(app.state, APP_STATE_KEY, authenticator)
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.pipeline = pipeline
    # CDS Hooks clients are browser-embedded apps as often as servers: CORS on every endpoint.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["X-Correlation-Id"],
    )
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(EhrAuthenticationError, ehr_authentication_error_handler)
    app.add_exception_handler(HookRequestError, hook_request_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    document_validation_errors_as_400(app)
    app.include_router(router)
    app.include_router(decisions_router)
    app.include_router(policies_router)
    app.include_router(silences_router)
    app.include_router(candidates_router)
    app.include_router(feedback_router)
    return app
