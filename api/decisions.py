"""GET /decisions/{id}/explain: why a decision came out as it did (routes tried, mechanisms), from the store.
For informaticists (a staff token with that role), not for EHRs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.errors import HookRequestError
from api.pipeline import HookPipeline
from api.responses import JSONBytes
from api.schemas import ErrorRead
from api.security.staff import InformaticistDep

router = APIRouter()


def _pipeline(request: Request) -> HookPipeline:
    pipeline: HookPipeline = request.app.state.pipeline
    return pipeline


PipelineDep = Annotated[HookPipeline, Depends(_pipeline)]


@router.get(
    "/decisions/{decision_id}/explain",
    response_class=JSONBytes,
    tags=["admin"],
    responses={401: {"model": ErrorRead}, 403: {"model": ErrorRead}, 404: {"model": ErrorRead}},
)
def explain_decision(decision_id: int, _: InformaticistDep, pipeline: PipelineDep) -> JSONBytes:
    # A plain `def`: FastAPI runs it in its thread pool, so the database read does not block the event loop.
    found = pipeline.explain(decision_id)
    if found is None:
        raise HookRequestError(404, f"no decision with id {decision_id}")
    return JSONBytes(found)
