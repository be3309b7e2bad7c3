"""CDS Hooks routes: parse, call the pipeline, render. No clinical logic here."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from api.responses import JSONBytes
from pydantic import ValidationError

from api.catalog import ServiceCatalog
from api.errors import HookRequestError
from api.pipeline import HookPipeline
from api.schemas import HookRequest

router = APIRouter()


def _catalog(request: Request) -> ServiceCatalog:
    catalog: ServiceCatalog = request.app.state.catalog
    return catalog


def _pipeline(request: Request) -> HookPipeline:
    pipeline: HookPipeline = request.app.state.pipeline
    return pipeline


CatalogDep = Annotated[ServiceCatalog, Depends(_catalog)]
PipelineDep = Annotated[HookPipeline, Depends(_pipeline)]


@router.get("/cds-services", response_class=JSONBytes)
async def discovery(catalog: CatalogDep) -> JSONBytes:
    return JSONBytes(catalog.discovery())


@router.post("/cds-services/{service_id}", response_class=JSONBytes)
async def call_hook(service_id: str, request: Request, catalog: CatalogDep, pipeline: PipelineDep) -> JSONBytes:
    service = catalog.get(service_id)
    if service is None:
        raise HookRequestError(404, f"no CDS service with id {service_id!r}")
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HookRequestError(400, "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise HookRequestError(400, "request body must be a JSON object")
    try:
        HookRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise HookRequestError(400, problems) from exc
    if body["hook"] != service.hook:
        raise HookRequestError(400, f"service {service.id!r} answers hook {service.hook!r}, not {body['hook']!r}")
    return JSONBytes(await run_in_threadpool(pipeline.handle, service, body))


@router.get("/healthz", response_class=JSONBytes)
async def healthz() -> JSONBytes:
    return JSONBytes({"status": "ok"})
