"""CDS Hooks routes: parse, call the pipeline, render. No clinical logic here."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, ValidationError

from api.catalog import ServiceCatalog
from api.errors import HookRequestError
from api.hook_contexts import ContextError, check_context
from api.hook_runner import answer_within_deadline
from api.metrics import FEEDBACK, OUTBOX_DEPTH, TIMER_LAG, TIMERS_PENDING
from api.pipeline import HookPipeline
from api.prefetch import PrefetchRequestError, PrefetchResolver, PrefetchUnavailable
from api.responses import JSONBytes
from api.schemas import CardsResponse, DiscoveryResponse, ErrorRead, FeedbackReceiptRead, HookRequest
from api.security import EhrClientDep
from cdsctl.settings import Settings
from feedback.cds_hooks import FeedbackError, FeedbackRequest, parse_feedback, record_feedback

router = APIRouter()


# The accessors are `async` only so that FastAPI calls them on the event loop: a plain `def` dependency costs a
# round trip through the thread pool, several of which were a large part of a hook call's time.
async def _catalog(request: Request) -> ServiceCatalog:
    catalog: ServiceCatalog = request.app.state.catalog
    return catalog


async def _pipeline(request: Request) -> HookPipeline:
    pipeline: HookPipeline = request.app.state.pipeline
    return pipeline


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorRead} for status in statuses}


def _inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    # A request body given through openapi_extra cannot carry its own $defs (OpenAPI resolves "#/..." from the
    # document root), so references are inlined; the wire models are not recursive, so this ends.
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline_refs(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inline_refs(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(item, defs) for item in schema]
    return schema


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its raw body itself (to bound its size before parsing)."""
    schema = model.model_json_schema(by_alias=True)
    body = _inline_refs(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


SettingsDep = Annotated[Settings, Depends(_settings)]
CatalogDep = Annotated[ServiceCatalog, Depends(_catalog)]
PipelineDep = Annotated[HookPipeline, Depends(_pipeline)]


# Routes reading raw bodies declare their bodies and answers here, so the OpenAPI schema describes the wire format.
@router.get("/cds-services", response_class=JSONBytes, responses={200: {"model": DiscoveryResponse}, **_errors(401)})
async def discovery(catalog: CatalogDep, client: EhrClientDep) -> JSONBytes:
    return JSONBytes(catalog.discovery())


@router.post(
    "/cds-services/{service_id}",
    response_class=JSONBytes,
    responses={200: {"model": CardsResponse}, **_errors(400, 401, 404, 412, 413, 415)},
    openapi_extra=_json_body(HookRequest),
)
async def call_hook(service_id: str, request: Request, client: EhrClientDep) -> JSONBytes:
    # The hot path reads its collaborators off the app state itself: each declared dependency would cost every
    # call a pass through FastAPI's dependency solver.
    state = request.app.state
    catalog: ServiceCatalog = state.catalog
    settings: Settings = state.settings
    prefetch: PrefetchResolver = state.prefetch
    service = catalog.get(service_id)
    if service is None:
        raise HookRequestError(404, f"no CDS service with id {service_id!r}")
    _require_json(request)
    body = _json_object(await _read_body(request, settings.max_body_bytes))
    try:
        HookRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise HookRequestError(400, problems) from exc
    if body["hook"] != service.hook:
        raise HookRequestError(400, f"service {service.id!r} answers hook {service.hook!r}, not {body['hook']!r}")
    try:
        check_context(service.hook, body["context"])
    except ContextError as exc:
        raise HookRequestError(400, str(exc)) from exc
    # Prefetch is completed before the deadline starts: a 412 must reach the EHR, not become an empty answer.
    try:
        resolved = await prefetch.resolve(service.prefetch, body)
    except PrefetchRequestError as exc:
        raise HookRequestError(400, str(exc)) from exc
    except PrefetchUnavailable as exc:
        raise HookRequestError(412, str(exc)) from exc
    body = {**body, "prefetch": resolved.values}
    answer = await answer_within_deadline(
        service,
        body,
        deadline_s=settings.hook_deadline_seconds,
        actor=client.actor,
        in_flight=state.in_flight,
    )
    return JSONBytes(answer)


@router.post(
    "/cds-services/{service_id}/feedback",
    response_class=JSONBytes,
    responses={200: {"model": FeedbackReceiptRead}, **_errors(400, 401, 404, 413, 415)},
    openapi_extra=_json_body(FeedbackRequest),
)
async def post_feedback(
    service_id: str,
    request: Request,
    catalog: CatalogDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    client: EhrClientDep,
) -> JSONBytes:
    if catalog.get(service_id) is None:
        raise HookRequestError(404, f"no CDS service with id {service_id!r}")
    _require_json(request)
    raw = await _read_body(request, settings.max_body_bytes)
    try:
        parsed = parse_feedback(_json_object(raw))
        receipt = await run_in_threadpool(
            record_feedback,
            parsed,
            service_id=service_id,
            unit_of_work=pipeline.unit_of_work,
            actor=client.actor,
            now=datetime.now(UTC),
        )
    except FeedbackError as exc:
        raise HookRequestError(exc.status, str(exc)) from exc
    for item in parsed.feedback:
        FEEDBACK.labels("cds-hooks", item.outcome).inc()
    if receipt.unknown_cards:
        # Kept for the feedback report, but the EHR is told plainly that these cards are not ours.
        raise HookRequestError(404, f"service {service_id!r} sent no card with uuid {', '.join(receipt.unknown_cards)}")
    return JSONBytes({"recorded": receipt.recorded, "duplicates": receipt.duplicates})


def _require_json(request: Request) -> None:
    # CDS Hooks bodies are application/json. Reading any body as JSON would let a browser page post text/plain or a
    # form across origins with no CORS preflight at all, so other media types are refused before the body is read.
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HookRequestError(415, "request body must be sent as application/json")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HookRequestError(400, "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise HookRequestError(400, "request body must be a JSON object")
    return body


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HookRequestError(413, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HookRequestError(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/healthz", response_class=JSONBytes)
async def healthz() -> JSONBytes:
    """The process is up and serving."""
    return JSONBytes({"status": "ok"})


# Longer than the PostgreSQL connect timeout (store/db.py), so a database slow to refuse still reports each check.
READINESS_TIMEOUT_S = 3.0


@router.get("/readyz", response_class=JSONBytes)
async def readyz(request: Request) -> JSONBytes:
    """Ready for traffic: the database answers, its schema is current, and every service's components loaded."""
    try:
        checks: dict[str, bool] = await asyncio.wait_for(
            run_in_threadpool(request.app.state.readiness), READINESS_TIMEOUT_S
        )
    except TimeoutError:
        # A database that stops answering, or hook work holding every thread, must read as not ready, promptly.
        checks = {"answered_in_time": False}
    status = 200 if all(checks.values()) else 503
    return JSONBytes({"status": "ready" if status == 200 else "not-ready", "checks": checks}, status_code=status)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: latency, failures and decisions by service, action and reason, feedback, and the durable
    queues (outbox depth, timer lag) read at scrape time; never by patient."""
    figures = getattr(request.app.state, "queue_figures", None)
    if figures is not None:
        # Bounded like /readyz: a stuck database leaves the queue gauges at their last values, never a hung scrape.
        with contextlib.suppress(Exception):
            queues = await asyncio.wait_for(run_in_threadpool(figures), timeout=READINESS_TIMEOUT_S)
            for state, count in queues.outbox.items():
                OUTBOX_DEPTH.labels(state).set(count)
            TIMERS_PENDING.set(queues.timers_pending)
            TIMER_LAG.set(queues.timer_lag_seconds)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
